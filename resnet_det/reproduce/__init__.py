"""Reproduce the paper's detection comparison (He et al. 2015, Tables 7 and 8: Faster R-CNN
with VGG-16 vs ResNet-101) in one call, and its demo on generated data.

    from resnet_det.reproduce import COMPARISONS, DEMO, run_comparison
    run_comparison(COMPARISONS["8"], output_dir="output/reproduce/table8", num_gpus=8,
                   weights={"r101": "R-101.pkl", "vgg16": "vgg16.pth"})

- paper.py: the comparisons (configs, metrics, the paper's numbers);
- plan.py: the steps (pretraining, conversion, detection) and their merged configs;
- runs.py: one step through the engine (launch + ClassificationTrainer / DetectionTrainer,
  convert_weights_file);
- pipeline.py: running the steps resumably (OUTPUT_DIR/reproduction.json);
- report.py: OUTPUT_DIR/reproduction.md and reproduction.png;
- demo.py, demo_data.py, demo_nets.py: the demo chain (generated data, small networks).

Importing the package registers the demo's data sets (shapes_crops_train/test) and its
VGG-style network (vgg16_quarter), so processes that ``launch`` spawns have them too.
tools/reproduce.py is the command line; docs/reproduction.md, "Running the comparison".
"""

from .demo import DEMO, FAST_DETECT_OPTS, FAST_PRETRAIN_OPTS, register_demo
from .paper import COMPARISONS, Backbone, Comparison, Metric
from .pipeline import STATE_FILE, load_state, run_comparison
from .plan import Step, plan_steps

register_demo()

__all__ = [
    "COMPARISONS",
    "DEMO",
    "FAST_DETECT_OPTS",
    "FAST_PRETRAIN_OPTS",
    "Backbone",
    "Comparison",
    "Metric",
    "STATE_FILE",
    "Step",
    "load_state",
    "plan_steps",
    "register_demo",
    "run_comparison",
]
