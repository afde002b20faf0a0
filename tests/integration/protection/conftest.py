"""The lite mode's fixtures (one `edgeworkers agent` against a real cloud), for the node's protections."""
from tests.integration.lite.conftest import edge_cluster, lite_cloud, lite_cluster  # noqa: F401
