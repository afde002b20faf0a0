"""The status manager (kubelet's ``pkg/kubelet/status``): the pod status generated from the runtime, the node's last
status of each pod, its way to the cloud through the outbox, the periodic resync, and the probe results it reads."""
