"""Kubernetes events the node records: client-go's correlation (``correlator``) and kubelet's recorder (``recorder``)."""
