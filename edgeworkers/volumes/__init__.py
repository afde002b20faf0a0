"""The volume manager: a pod's volumes made ready on the node before its containers start (kubelet's volumemanager,
trimmed to the volume types an edge node serves).

- ``paths``: the path checks (pod identity as path components, projected item paths, subPath resolution that no
  symlink, planted or not, can lead out of its volume);
- ``atomic``: kubelet's atomic writer (a timestamped directory and a ``..data`` symlink swapped in one rename);
- ``downward``: the downward API's field and resource values (shared by volumes and env ``valueFrom``);
- ``builders``: the files of configMap, secret, downwardAPI and projected volumes, as pure functions;
- ``mounter``: tmpfs and bind mounts on the host (the agent runs as root);
- ``manager``: ``VolumeManager``, which sets a pod's volumes up on each sync and tears them down once its
  containers are gone.
"""
