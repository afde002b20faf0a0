"""The cloud bridge (process ``bridge``): the cloud's pods, configmaps and secrets into MetaManager and the pod
queues; the node's statuses and mirror pods back to the cloud. ``run`` wires its threads.

Layering: the bridge builds on pods/, metamanager/ and the kube client; it never imports ``actors`` (a worker's
Docker runtime) or ``cloud`` (a separate process, which a real API server may replace).
"""
