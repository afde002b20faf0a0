"""Liveness, readiness and startup probes (exec, httpGet, tcpSocket) with Kubernetes semantics."""
