"""The seed's "Unit Testing Custom Nodes" example, run against MyImageProcessor of the seed_examples pack.

The pack is imported the way nodefarm loads packs (ComfyUI's modules installed first) and registered as
``my_custom_nodes``, the module name the seed's example imports from; below that, the seed's code as is.
"""

import importlib.util
import sys
from pathlib import Path

from nodes.boot import install_compat

install_compat()
_PACK = Path(__file__).resolve().parents[1] / "custom_nodes" / "seed_examples" / "__init__.py"
_spec = importlib.util.spec_from_file_location("my_custom_nodes", _PACK)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
sys.modules["my_custom_nodes"] = _module
_spec.loader.exec_module(_module)

# ---- the seed's example -----------------------------------------------------------------------

# test_my_node.py
import unittest  # noqa: E402

import torch  # noqa: E402
from my_custom_nodes import MyImageProcessor  # noqa: E402


class TestMyImageProcessor(unittest.TestCase):
    def setUp(self):
        self.node = MyImageProcessor()

    def test_basic_processing(self):
        # Create test image
        test_image = torch.rand(1, 256, 256, 3)

        # Process
        result = self.node.process(test_image, strength=0.5)

        # Verify
        self.assertEqual(result[0].shape, test_image.shape)
        self.assertTrue(torch.all(result[0] >= 0))
        self.assertTrue(torch.all(result[0] <= 1))

    def test_batch_processing(self):
        # Test with batch
        batch_image = torch.rand(5, 256, 256, 3)
        result = self.node.process(batch_image, strength=0.5)

        self.assertEqual(result[0].shape[0], 5)

if __name__ == "__main__":
    unittest.main()
