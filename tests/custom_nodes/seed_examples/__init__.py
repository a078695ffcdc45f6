"""The example classes of the seed document "Advanced Custom Node Features", as the seed writes them.

Each class body is the seed's code. What the seed leaves out is filled in and marked ``# (filled in)``:
RETURN_TYPES / FUNCTION / INPUT_TYPES / CATEGORY where it omits them, helper methods it calls but does
not show (expensive_operation, expensive_processing, process_chunk, scale_image, process_item,
iteration_step), the connections of ExpanderNode (see docs/expand_node.md), and MyImageProcessor (the
class its unit-test example imports). Helpers write "marks" to ``$NODEFARM_TEST_MARKS`` so tests can see
what ran.
"""

import gc
import os
import time
from pathlib import Path

import torch

import comfy.model_management  # (filled in) the seed's ProgressNode calls it without importing it
import comfy.utils  # (filled in) report_progress reports through a ProgressBar
from comfy.cli_args import args
from server import PromptServer

CATEGORY = "seed_examples"  # (filled in)


def _mark(name, text):  # (filled in) test observation
    folder = os.environ.get("NODEFARM_TEST_MARKS")
    if folder:
        with open(Path(folder) / name, "a") as fh:
            fh.write(text + "\n")


# ---- Server-Client Communication -------------------------------------------------------------


class InteractiveNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "value": ("FLOAT", {"default": 0.5}),
            },
            "hidden": {
                "unique_id": "UNIQUE_ID"
            }
        }

    RETURN_TYPES = ("FLOAT",)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "process"

    def process(self, value, unique_id):
        # Send progress updates
        PromptServer.instance.send_sync(
            "my_node.progress",
            {
                "node_id": unique_id,
                "progress": 0.5,
                "message": "Processing..."
            }
        )

        # Process...
        result = value * 2

        # Send completion
        PromptServer.instance.send_sync(
            "my_node.complete",
            {
                "node_id": unique_id,
                "result": result
            }
        )

        return (result,)


# ---- Lazy Evaluation -----------------------------------------------------------------------------


class LazyProcessorNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "trigger": ("BOOLEAN", {"default": False}),
                "expensive_input": ("IMAGE", {"lazy": True}),
            }
        }

    RETURN_TYPES = ("IMAGE",)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "process"

    def process(self, trigger, expensive_input):
        if not trigger:
            # Don't evaluate expensive input
            return (None,)

        # Only evaluate when needed
        if callable(expensive_input):
            actual_image = expensive_input()
        else:
            actual_image = expensive_input

        # Process the image
        result = self.expensive_operation(actual_image)
        return (result,)

    def expensive_operation(self, image):  # (filled in)
        return 1.0 - image


# ---- Dynamic Inputs ------------------------------------------------------------------------------


class DynamicInputNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "input_count": ("INT", {
                    "default": 2,
                    "min": 1,
                    "max": 10
                }),
            }
        }

    RETURN_TYPES = ("FLOAT",)  # (filled in) the list it returns is a list output
    OUTPUT_IS_LIST = (True,)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "process"

    def process(self, input_count, **kwargs):
        # Access dynamic inputs
        results = []
        for i in range(input_count):
            input_key = f"input_{i}"
            if input_key in kwargs:
                results.append(kwargs[input_key])

        return (results,)


# ---- Custom Widgets ------------------------------------------------------------------------------


class RemoteWidgetNode:  # (filled in) a node around the seed's remote data source widget
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": ("STRING", {
                    "default": "",
                    "remote": {
                        "route": "/api/models",
                        "refresh_button": True,
                        "refresh": 60000,  # Refresh every minute
                    }
                }),
            }
        }

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, model_name):
        return (model_name,)


class MultiSelectNode:  # (filled in) a node around the seed's multi-select widget
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "options": (["option1", "option2", "option3"], {
                    "default": ["option1"],
                    "multi_select": {
                        "placeholder": "Select options...",
                        "chip": True
                    }
                }),
            }
        }

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = CATEGORY

    def run(self, options):
        return (str(options),)


# ---- Node Expansion ------------------------------------------------------------------------------


class ExpanderNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "count": ("INT", {"default": 3}),
                "operation": (["add", "multiply"], {}),
            }
        }

    RETURN_TYPES = ("FLOAT",)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "expand"

    def expand(self, count, operation):
        # This is a placeholder - actual expansion happens elsewhere
        return (0.0,)

    @classmethod
    def expand_node(cls, node, context):
        """Called during graph expansion"""
        count = node.inputs["count"]
        operation = node.inputs["operation"]

        # Create a subgraph
        nodes = []
        for i in range(count):
            node_data = {
                "type": "MathOperation",
                "inputs": {"operation": operation}
            }
            nodes.append(node_data)

        return {
            "nodes": nodes,
            "connections": (  # (filled in) a chain: each node's output feeds the next one's "a"
                [{"from": [i, 0], "to": [i + 1, "a"]} for i in range(count - 1)]
                + [{"value": 1.0, "to": [0, "a"]}]
                + [{"value": 2.0, "to": [i, "b"]} for i in range(count)]
            )  # Define connections
        }


# ---- Caching and Optimization --------------------------------------------------------------------


class CachedProcessor:
    def __init__(self):
        self.cache = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {}),
                "settings": ("STRING", {}),
            }
        }

    RETURN_TYPES = ("IMAGE",)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "process"

    def process(self, image, settings):
        # Create cache key
        cache_key = self.compute_cache_key(image, settings)

        # Check cache
        if cache_key in self.cache:
            print("Using cached result")
            return self.cache[cache_key]

        # Process
        result = self.expensive_processing(image, settings)

        # Cache result
        self.cache[cache_key] = (result,)

        # Limit cache size
        if len(self.cache) > 10:
            # Remove oldest entry
            oldest = next(iter(self.cache))
            del self.cache[oldest]

        return (result,)

    def compute_cache_key(self, image, settings):
        # Create unique key from inputs
        import hashlib
        image_hash = hashlib.md5(image.cpu().numpy().tobytes()).hexdigest()
        settings_hash = hashlib.md5(settings.encode()).hexdigest()
        return f"{image_hash}_{settings_hash}"

    def expensive_processing(self, image, settings):  # (filled in)
        _mark(f"cached-{settings}", f"{os.getpid()} computed")
        return image * 0.5


class MemoryEfficientNode:
    @classmethod
    def INPUT_TYPES(cls):  # (filled in)
        return {"required": {"large_input": ("IMAGE", {})}}

    RETURN_TYPES = ("IMAGE",)  # (filled in)
    FUNCTION = "process"  # (filled in)
    CATEGORY = CATEGORY  # (filled in)

    def process(self, large_input):
        # Process in chunks to save memory
        chunk_size = 10
        results = []

        for i in range(0, len(large_input), chunk_size):
            chunk = large_input[i:i+chunk_size]

            # Process chunk
            with torch.no_grad():
                result = self.process_chunk(chunk)
                results.append(result)

            # Clear GPU cache if needed
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

        # Combine results
        final_result = torch.cat(results)

        # Force garbage collection
        gc.collect()

        return (final_result,)

    def process_chunk(self, chunk):  # (filled in)
        _mark("memory-chunks", f"{float(chunk[0, 0, 0, 0]):.6f} {len(chunk)}")
        return 1.0 - chunk


# ---- Error Handling and Validation ---------------------------------------------------------------


class RobustNode:
    @classmethod
    def INPUT_TYPES(cls):  # (filled in)
        return {
            "required": {
                "image": ("IMAGE", {}),
                "scale_factor": ("FLOAT", {"default": 1.0}),
                "mode": (["bilinear", "nearest", "bicubic"], {}),
            }
        }

    RETURN_TYPES = ("IMAGE",)  # (filled in)
    FUNCTION = "process"  # (filled in)
    CATEGORY = CATEGORY  # (filled in)

    @classmethod
    def VALIDATE_INPUTS(cls, image, scale_factor, mode):
        # Check image
        if not isinstance(image, torch.Tensor):
            return "Image must be a tensor"

        if len(image.shape) != 4:
            return f"Image must be 4D tensor, got {len(image.shape)}D"

        if image.shape[3] not in [3, 4]:
            return f"Image must have 3 or 4 channels, got {image.shape[3]}"

        # Check scale factor
        if scale_factor <= 0:
            return "Scale factor must be positive"

        if scale_factor > 10:
            return "Scale factor too large (max 10)"

        # Check mode
        valid_modes = ["bilinear", "nearest", "bicubic"]
        if mode not in valid_modes:
            return f"Invalid mode. Must be one of: {valid_modes}"

        return True

    def process(self, image, scale_factor, mode):
        try:
            # Process with error handling
            result = self.scale_image(image, scale_factor, mode)

        except torch.cuda.OutOfMemoryError:
            # Handle GPU OOM
            torch.cuda.empty_cache()
            # Try with CPU
            result = self.scale_image(image.cpu(), scale_factor, mode)

        except Exception as e:
            # Log error and provide helpful message
            import traceback
            traceback.print_exc()
            raise RuntimeError(f"Processing failed: {str(e)}")

        return (result,)

    def scale_image(self, image, scale_factor, mode):  # (filled in)
        samples = image.movedim(-1, 1)
        height, width = max(1, round(samples.shape[2] * scale_factor)), max(1, round(samples.shape[3] * scale_factor))
        scaled = torch.nn.functional.interpolate(samples, size=(height, width), mode=mode)
        return scaled.movedim(1, -1).clamp(0, 1)


# ---- Progress Reporting --------------------------------------------------------------------------


class ProgressNode:
    @classmethod
    def INPUT_TYPES(cls):  # (filled in)
        return {"required": {"items": ("STRING", {"default": "abcde"})}}

    RETURN_TYPES = ("STRING",)  # (filled in)
    OUTPUT_IS_LIST = (True,)  # (filled in)
    FUNCTION = "process"  # (filled in)
    CATEGORY = CATEGORY  # (filled in)

    def process(self, items):
        total = len(items)
        results = []

        for i, item in enumerate(items):
            # Update progress
            if not args.disable_smart_memory:
                comfy.model_management.throw_exception_if_processing_interrupted()

            # Report progress
            progress = (i + 1) / total
            self.report_progress(progress, f"Processing item {i+1}/{total}")

            # Process item
            result = self.process_item(item)
            results.append(result)

            # Yield to other processes
            time.sleep(0.001)

        return (results,)

    def report_progress(self, progress, message):
        # Could send to frontend or log
        print(f"Progress: {progress:.1%} - {message}")
        comfy.utils.ProgressBar(100).update_absolute(round(progress * 100))  # (filled in) to the frontend

    def process_item(self, item):  # (filled in)
        time.sleep(0.05)
        return item.upper()


# ---- Custom Scheduling ---------------------------------------------------------------------------


class ConditionalNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "condition": ("BOOLEAN", {}),
                "if_true": ("IMAGE", {"lazy": True}),
                "if_false": ("IMAGE", {"lazy": True}),
            }
        }

    RETURN_TYPES = ("IMAGE",)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "execute"

    def execute(self, condition, if_true, if_false):
        # Only evaluate the needed branch
        if condition:
            result = if_true() if callable(if_true) else if_true
        else:
            result = if_false() if callable(if_false) else if_false

        return (result,)


class LoopNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "iterations": ("INT", {"default": 5}),
                "initial_value": ("FLOAT", {"default": 1.0}),
            }
        }

    RETURN_TYPES = ("FLOAT",)  # (filled in)
    CATEGORY = CATEGORY  # (filled in)
    FUNCTION = "loop"

    def loop(self, iterations, initial_value):
        value = initial_value

        for i in range(iterations):
            # In practice, this would call other nodes
            value = self.iteration_step(value, i)

        return (value,)

    def iteration_step(self, value, i):  # (filled in)
        return value + i


# ---- Testing and Debugging -----------------------------------------------------------------------


class MyImageProcessor:  # (filled in) the class the seed's unit-test example imports
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", {}),
                             "strength": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "process"
    CATEGORY = CATEGORY

    def process(self, image, strength):
        # blend each image toward its inverse by ``strength``; stays within [0, 1]
        result = image * (1.0 - strength) + (1.0 - image) * strength
        return (result.clamp(0.0, 1.0),)


class DebugNode:
    """Node for debugging workflows"""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "any_input": ("*", {}),
                "label": ("STRING", {"default": "Debug"}),
            }
        }

    RETURN_TYPES = ("*",)
    FUNCTION = "debug"
    OUTPUT_NODE = True

    def debug(self, any_input, label):
        print(f"\n=== {label} ===")
        print(f"Type: {type(any_input)}")

        if isinstance(any_input, torch.Tensor):
            print(f"Shape: {any_input.shape}")
            print(f"Device: {any_input.device}")
            print(f"dtype: {any_input.dtype}")
            print(f"Min: {any_input.min():.4f}")
            print(f"Max: {any_input.max():.4f}")
            print(f"Mean: {any_input.mean():.4f}")
        elif isinstance(any_input, dict):
            print(f"Keys: {list(any_input.keys())}")
        elif isinstance(any_input, (list, tuple)):
            print(f"Length: {len(any_input)}")

        print("================\n")

        return (any_input,)


NODE_CLASS_MAPPINGS = {
    "InteractiveNode": InteractiveNode,
    "LazyProcessorNode": LazyProcessorNode,
    "DynamicInputNode": DynamicInputNode,
    "RemoteWidgetNode": RemoteWidgetNode,
    "MultiSelectNode": MultiSelectNode,
    "ExpanderNode": ExpanderNode,
    "CachedProcessor": CachedProcessor,
    "MemoryEfficientNode": MemoryEfficientNode,
    "RobustNode": RobustNode,
    "ProgressNode": ProgressNode,
    "ConditionalNode": ConditionalNode,
    "LoopNode": LoopNode,
    "MyImageProcessor": MyImageProcessor,
    "DebugNode": DebugNode,
}

WEB_DIRECTORY = "./web/js"
__all__ = ['NODE_CLASS_MAPPINGS', 'WEB_DIRECTORY']
