import pytest

from qkdnet.node.qkd.params import STANDARD, LinkParams, ProcessingParams

# A link whose blocks are small enough for fast tests and still give key at epsilon_sec = 1e-10:
# symmetric bases put a quarter of the detections in the test basis.
SMALL_LINK = STANDARD.with_changes(p_z_alice=0.5, p_z_bob=0.5, length_km=25.0)
SMALL_BLOCK = ProcessingParams(block_detections=200_000)


@pytest.fixture
def small_link() -> LinkParams:
    return SMALL_LINK


@pytest.fixture
def small_block() -> ProcessingParams:
    return SMALL_BLOCK
