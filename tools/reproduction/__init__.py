"""Reproduce the paper's detection comparison (He et al. 2015, Tables 7 and 8: Faster R-CNN
with VGG-16 vs ResNet-101) in one call, and its demo on generated data: tools/reproduce.py's
logic, an application of resnet_det (not part of the installed package).

    from reproduction import COMPARISONS, DEMO, run_comparison   # tools/ on sys.path
    run_comparison(COMPARISONS["8"], output_dir="output/reproduce/table8", num_gpus=8,
                   weights={"r101": "R-101.pkl", "vgg16": "vgg16.pth"})

- paper.py: the comparisons (configs, metrics, the paper's numbers);
- plan.py: the steps (pretraining, conversion, detection) and their merged configs;
- runs.py: one step through the engine (launch + ClassificationTrainer / DetectionTrainer,
  convert_weights_file);
- pipeline.py: running the steps resumably (OUTPUT_DIR/reproduction.json), git_commit;
- report.py: OUTPUT_DIR/reproduction.md and reproduction.png;
- demo.py, demo_data.py: the demo chain (generated data; its small VGG is resnet_det.modeling's
  vgg16_quarter).

tools/reproduce.py imports this package by name (Python puts the script's folder first on
sys.path); the tests do through pytest's ``pythonpath`` (pyproject.toml). Importing it
registers the demo's data sets (shapes_crops_train/test), so the processes that ``launch``
spawns, which import it to run a step, have them too. docs/reproduction.md, "Running the
comparison".
"""

from .demo import DEMO, FAST_DETECT_OPTS, FAST_PRETRAIN_OPTS, register_demo
from .paper import COMPARISONS, ComparedBackbone, Comparison, Metric
from .pipeline import STATE_FILE, load_state, run_comparison
from .plan import Step, plan_steps

register_demo()

__all__ = [
    "COMPARISONS",
    "DEMO",
    "FAST_DETECT_OPTS",
    "FAST_PRETRAIN_OPTS",
    "ComparedBackbone",
    "Comparison",
    "Metric",
    "STATE_FILE",
    "Step",
    "load_state",
    "plan_steps",
    "register_demo",
    "run_comparison",
]
