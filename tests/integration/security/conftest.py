"""The cloud and node fixtures of tests/integration/cloud, for the trust-boundary tests."""
from tests.integration.cloud.conftest import cloud, edge_node, own_cloud, own_edge_node  # noqa: F401
