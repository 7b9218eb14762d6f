"""Default configuration: every key the built-in engine reads, one comment per key.

Key names follow detectron2 wherever the concept exists there, so that the same YAML files
drive both engines; keys detectron2 lacks (shortcut options, plain nets, classification
pretraining) are added under the same sections.
"""

from fvcore.common.config import CfgNode as _FvCfgNode

DEFAULTS = _FvCfgNode()
# Version of the config layout, bumped when keys are renamed.
DEFAULTS.VERSION = 2

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
DEFAULTS.MODEL = _FvCfgNode()
# "GeneralizedRCNN" (Faster R-CNN detector) or "ImageClassifier" (ImageNet/CIFAR pretraining).
DEFAULTS.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
# Device to build the model on: "cpu" or "cuda" (detectron2's key).
DEFAULTS.MODEL.DEVICE = "cpu"
# Path to initial weights (torchvision, detectron2/MSRA .pkl/.pth or resnet_det checkpoint);
# empty string trains from scratch.
DEFAULTS.MODEL.WEIGHTS = ""
# Pixel mean subtracted from the input, in INPUT.FORMAT channel order (MSRA BGR values).
DEFAULTS.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
# Pixel std the input is divided by (MSRA weights expect 1.0: they were trained on 0-255 BGR).
DEFAULTS.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]
# MODEL.WEIGHTS vs the input this config feeds (INPUT.FORMAT, PIXEL_MEAN, PIXEL_STD; the weights'
# contract is recorded in the file or known from its layout, resnet_det/checkpoint/weights.py):
# "check" stops before training when they differ, naming the keys to set; "adopt" sets those
# keys to the weights' values; "ignore" keeps the config's without checking.
DEFAULTS.MODEL.WEIGHTS_INPUT_CONTRACT = "check"
# Train only the region proposal network (detectron2's key; False for Faster R-CNN).
DEFAULTS.MODEL.PROPOSAL_GENERATOR = _FvCfgNode()
# Proposal generator name; only "RPN" is supported.
DEFAULTS.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
# Proposals narrower or shorter than this (pixels of the network input, as in detectron2) are
# dropped before NMS; 0 keeps every non-empty box.
DEFAULTS.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

DEFAULTS.MODEL.BACKBONE = _FvCfgNode()
# Backbone builder: "build_resnet_backbone" (C4 or res5 outputs), "build_resnet_fpn_backbone",
# "build_vgg_backbone" (also accepted under the plugin names build_resnet_det_backbone,
# build_resnet_det_fpn_backbone, build_vgg16_backbone).
DEFAULTS.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Freeze the stem (1) and res2..resk (k); 0 trains everything. The paper's detector freezes
# conv1 and res2 (detectron2's default 2).
DEFAULTS.MODEL.BACKBONE.FREEZE_AT = 2

DEFAULTS.MODEL.RESNETS = _FvCfgNode()
# ResNet depth: 18, 34, 50, 101, 152 or 200.
DEFAULTS.MODEL.RESNETS.DEPTH = 50
# Backbone features returned to the detector ("res4" for C4, res2..res5 for FPN).
DEFAULTS.MODEL.RESNETS.OUT_FEATURES = ["res4"]
# Groups in the 3x3 conv of bottleneck blocks (ResNeXt: 32).
DEFAULTS.MODEL.RESNETS.NUM_GROUPS = 1
# Width of each group (64 = ResNet; ResNeXt 32x4d: 4; wide ResNet-50-2: 128).
DEFAULTS.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# Normalization: "BN", "FrozenBN", "SyncBN", "GN" or "none". The paper's detector freezes BN.
DEFAULTS.MODEL.RESNETS.NORM = "FrozenBN"
# True: stride in the first 1x1 conv of a bottleneck (the paper, MSRA weights). False: in the
# 3x3 (torchvision "v1.5" weights).
DEFAULTS.MODEL.RESNETS.STRIDE_IN_1X1 = True
# Dilation of res5 (1 or 2); 2 keeps res5 at stride 16.
DEFAULTS.MODEL.RESNETS.RES5_DILATION = 1
# Channels of res2's output (256 for bottleneck nets, 64 for ResNet-18/34).
DEFAULTS.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
# Channels of the stem's output.
DEFAULTS.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
# Shortcut option of the paper's Sec. 3.3: "A" zero-padding identity, "B" projections where the
# shape changes, "C" projections everywhere.
DEFAULTS.MODEL.RESNETS.SHORTCUT = "B"
# True builds the plain counterpart (same layers, no shortcut connections; Sec. 4.1).
DEFAULTS.MODEL.RESNETS.PLAIN = False
# Zero-initialize the last norm's scale in each residual block.
DEFAULTS.MODEL.RESNETS.ZERO_INIT_RESIDUAL = False

DEFAULTS.MODEL.VGG = _FvCfgNode()
# VGG depth: 16 or 19.
DEFAULTS.MODEL.VGG.DEPTH = 16
# Normalization after each VGG conv: "none" (the original VGG), "BN" (torchvision's vgg16_bn),
# or any other norm name (see MODEL.RESNETS.NORM).
DEFAULTS.MODEL.VGG.NORM = "none"

DEFAULTS.MODEL.FPN = _FvCfgNode()
# Backbone features the FPN takes.
DEFAULTS.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
# Channels of every FPN level.
DEFAULTS.MODEL.FPN.OUT_CHANNELS = 256
# Normalization inside FPN convs ("" for none).
DEFAULTS.MODEL.FPN.NORM = ""

DEFAULTS.MODEL.ANCHOR_GENERATOR = _FvCfgNode()
# Anchor sizes per feature map (one list per RPN input feature; the paper: 3 scales x 3 ratios).
DEFAULTS.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
# Anchor aspect ratios (height / width), one list applied to every feature map.
DEFAULTS.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]

DEFAULTS.MODEL.RPN = _FvCfgNode()
# Features the RPN runs on.
DEFAULTS.MODEL.RPN.IN_FEATURES = ["res4"]
# IoU thresholds: below the first is background, above the second foreground.
DEFAULTS.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
# Anchors sampled per image for the RPN loss.
DEFAULTS.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
# Fraction of sampled anchors that are foreground.
DEFAULTS.MODEL.RPN.POSITIVE_FRACTION = 0.5
# Proposals kept per image before NMS, training.
DEFAULTS.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
# Proposals kept per image before NMS, testing.
DEFAULTS.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
# Proposals kept per image after NMS, training.
DEFAULTS.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
# Proposals kept per image after NMS, testing.
DEFAULTS.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
# NMS threshold on proposals.
DEFAULTS.MODEL.RPN.NMS_THRESH = 0.7
# Channels of the RPN's 3x3 conv (-1: same as its input).
DEFAULTS.MODEL.RPN.CONV_DIMS = [-1]

DEFAULTS.MODEL.ROI_HEADS = _FvCfgNode()
# RoI head: "Res5ROIHeads" (C4: res5 as the box head) or "StandardROIHeads" (FPN, VGG fc6/fc7).
DEFAULTS.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
# Number of foreground classes.
DEFAULTS.MODEL.ROI_HEADS.NUM_CLASSES = 80
# Features the RoI heads pool from.
DEFAULTS.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
# RoIs sampled per image for the box loss.
DEFAULTS.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
# Fraction of sampled RoIs that are foreground.
DEFAULTS.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# IoU at or above which a proposal is foreground.
DEFAULTS.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
# Detections below this score are dropped at test time.
DEFAULTS.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
# Per-class NMS threshold at test time.
DEFAULTS.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
# Detections kept per image at test time.
DEFAULTS.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE = 100

DEFAULTS.MODEL.ROI_BOX_HEAD = _FvCfgNode()
# Box head after pooling for StandardROIHeads: "FastRCNNConvFCHead" (2 fc, FPN) or "VGGFCHead"
# (VGG's fc6/fc7, which can take ImageNet weights).
DEFAULTS.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
# Pooling: "ROIAlignV2", "ROIAlign" or "ROIPool" (the original Faster R-CNN).
DEFAULTS.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
# Output size of RoI pooling (14 for C4, whose res5 halves it; 7 for FPN and VGG).
DEFAULTS.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
# Sampling ratio of RoIAlign (0 = adaptive).
DEFAULTS.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
# Number of fc layers in the FastRCNNConvFCHead.
DEFAULTS.MODEL.ROI_BOX_HEAD.NUM_FC = 2
# Width of those fc layers (1024 for FPN, 4096 for VGG).
DEFAULTS.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
# Weights of the box regression targets (dx, dy, dw, dh).
DEFAULTS.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = [10.0, 10.0, 5.0, 5.0]

# Mask R-CNN (He et al., 2017): a mask head beside the box head (detectron2's keys).
# Predict instance masks as well as boxes.
DEFAULTS.MODEL.MASK_ON = False

DEFAULTS.MODEL.ROI_MASK_HEAD = _FvCfgNode()
# Mask head: "MaskRCNNConvUpsampleHead" (NUM_CONV 3x3 convs, a 2x deconv, a 1x1 predictor).
DEFAULTS.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
# Pooling of the mask RoIs (StandardROIHeads; Res5ROIHeads pools like its box head, then res5).
DEFAULTS.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"
# Output size of that pooling (14: the predicted masks are twice that, 28x28).
DEFAULTS.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
# Sampling ratio of RoIAlign (0 = adaptive).
DEFAULTS.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
# Number of 3x3 convs before the deconv (0 for C4, whose mask head follows res5; 4 for FPN).
DEFAULTS.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
# Channels of those convs and of the deconv.
DEFAULTS.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
# Normalization of those convs: "" (none), "BN", "SyncBN", "GN", "FrozenBN".
DEFAULTS.MODEL.ROI_MASK_HEAD.NORM = ""
# One class-agnostic mask instead of one per class.
DEFAULTS.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False

DEFAULTS.MODEL.CLASSIFIER = _FvCfgNode()
# Network for ImageClassifier: a resnet_det.list_models() name ("resnet50", "resnet20_cifar").
# MODEL.RESNETS.SHORTCUT / NORM / STRIDE_IN_1X1 / ZERO_INIT_RESIDUAL apply to it too.
DEFAULTS.MODEL.CLASSIFIER.ARCH = "resnet50"
# Number of classes of the classifier head.
DEFAULTS.MODEL.CLASSIFIER.NUM_CLASSES = 1000
# Label smoothing of the cross-entropy loss (0 = the paper; 0.1 in the modern recipe).
DEFAULTS.MODEL.CLASSIFIER.LABEL_SMOOTHING = 0.0

# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------
DEFAULTS.INPUT = _FvCfgNode()
# Shorter side sampled from this list for each training image (the paper: 600).
DEFAULTS.INPUT.MIN_SIZE_TRAIN = (600,)
# "choice" samples from MIN_SIZE_TRAIN; "range" samples uniformly between its two values.
DEFAULTS.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
# Longer side is capped at this size in training.
DEFAULTS.INPUT.MAX_SIZE_TRAIN = 1000
# Shorter side at test time.
DEFAULTS.INPUT.MIN_SIZE_TEST = 600
# Longer side cap at test time.
DEFAULTS.INPUT.MAX_SIZE_TEST = 1000
# Channel order the model sees: "BGR" (MSRA / detectron2 weights) or "RGB" (torchvision).
DEFAULTS.INPUT.FORMAT = "BGR"
# Horizontal flip probability in training.
DEFAULTS.INPUT.RANDOM_FLIP_PROB = 0.5
# Where the training loaders decode: "" in the loader workers (CPU); a device ("cuda", "cpu"):
# the workers read the files and the main process decodes each batch there (nvJPEG on a GPU,
# one call per batch) and augments it there (docs/datasets.md, "Decoding on the GPU").
DEFAULTS.INPUT.DECODE_DEVICE = ""

# Classification input (pretraining).
DEFAULTS.INPUT.CLS = _FvCfgNode()
# Side of the square training crop (224 ImageNet, 32 CIFAR).
DEFAULTS.INPUT.CLS.CROP_SIZE = 224
# Shorter side sampled in [min, max] before the crop (Sec. 3.4: [256, 480]); [] disables.
DEFAULTS.INPUT.CLS.SCALE_RANGE = [256, 480]
# Zero padding before a random crop (CIFAR: 4 pixels; Sec. 4.2).
DEFAULTS.INPUT.CLS.PAD = 0
# AlexNet-style PCA colour augmentation strength (0.1 in the paper's recipe; 0 disables).
DEFAULTS.INPUT.CLS.PCA_LIGHTING = 0.1
# Shorter side before the centre crop at test time.
DEFAULTS.INPUT.CLS.TEST_RESIZE = 256
# Per-channel mean (RGB, 0-255) subtracted from classification inputs.
DEFAULTS.INPUT.CLS.PIXEL_MEAN = [123.675, 116.28, 103.53]
# Per-channel std (RGB, 0-255) dividing classification inputs.
DEFAULTS.INPUT.CLS.PIXEL_STD = [58.395, 57.12, 57.375]

# ---------------------------------------------------------------------------------------------
# Datasets and loading
# ---------------------------------------------------------------------------------------------
DEFAULTS.DATASETS = _FvCfgNode()
# Registered dataset names to train on (concatenated).
DEFAULTS.DATASETS.TRAIN = ()
# Registered dataset names to evaluate on.
DEFAULTS.DATASETS.TEST = ()

DEFAULTS.DATALOADER = _FvCfgNode()
# Worker processes for data loading (0 loads in the main process).
DEFAULTS.DATALOADER.NUM_WORKERS = 2
# Batch images of similar aspect ratio together (fewer padded pixels).
DEFAULTS.DATALOADER.ASPECT_RATIO_GROUPING = True
# Training sampler: "TrainingSampler" (infinite, shuffled, seeded).
DEFAULTS.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
# Drop training images that have no annotation.
DEFAULTS.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True
# What a fault of one image or annotation does in every reader (missing/unreadable image, size
# mismatch, unknown ids, ...): "stop" raises naming the file and id, "skip" leaves it out and
# counts it (log, metrics.json); docs/datasets.md "Bad data".
DEFAULTS.DATALOADER.ON_BAD_IMAGE = "stop"

# ---------------------------------------------------------------------------------------------
# Solver
# ---------------------------------------------------------------------------------------------
DEFAULTS.SOLVER = _FvCfgNode()
# Learning-rate schedule: "WarmupMultiStepLR" (step decay), "WarmupCosineLR", or
# "ReduceLROnPlateau" (the paper's ImageNet "divide by 10 when the error plateaus").
DEFAULTS.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
# Number of training iterations.
DEFAULTS.SOLVER.MAX_ITER = 40000
# Learning rate for IMS_PER_BATCH images.
DEFAULTS.SOLVER.BASE_LR = 0.001
# SGD momentum.
DEFAULTS.SOLVER.MOMENTUM = 0.9
# Use Nesterov momentum.
DEFAULTS.SOLVER.NESTEROV = False
# L2 weight decay.
DEFAULTS.SOLVER.WEIGHT_DECAY = 0.0001
# Weight decay for norm layers' parameters.
DEFAULTS.SOLVER.WEIGHT_DECAY_NORM = 0.0
# Learning-rate multiplier of every bias (detectron2's key; Caffe's "lr_mult: 2" is 2.0).
DEFAULTS.SOLVER.BIAS_LR_FACTOR = 1.0
# Weight decay of every bias, norm layers' too (detectron2's key); None: as their module's weights.
DEFAULTS.SOLVER.WEIGHT_DECAY_BIAS = None
# Factor the lr is multiplied by at each step.
DEFAULTS.SOLVER.GAMMA = 0.1
# Iterations at which the lr is multiplied by GAMMA.
DEFAULTS.SOLVER.STEPS = (30000,)
# Linear warmup from WARMUP_FACTOR * BASE_LR over this many iterations.
DEFAULTS.SOLVER.WARMUP_ITERS = 1000
# Starting fraction of BASE_LR during warmup.
DEFAULTS.SOLVER.WARMUP_FACTOR = 0.001
# "linear" or "constant" warmup (the paper's ResNet-110 uses a constant 0.1x warm-up).
DEFAULTS.SOLVER.WARMUP_METHOD = "linear"
# ReduceLROnPlateau: evaluations without improvement before dividing the lr by 10.
DEFAULTS.SOLVER.PLATEAU_PATIENCE = 3
# ReduceLROnPlateau: evaluation result watched, as written to metrics.json (e.g. "top1_err").
DEFAULTS.SOLVER.PLATEAU_METRIC = ""
# ReduceLROnPlateau: "min" for an error, "max" for an accuracy or AP.
DEFAULTS.SOLVER.PLATEAU_MODE = "min"
# Save a checkpoint every this many iterations.
DEFAULTS.SOLVER.CHECKPOINT_PERIOD = 5000
# Keep only the newest this many numbered checkpoints (0 keeps all; >= 2 leaves one to resume
# from if the newest is damaged; model_final.pth is always kept).
DEFAULTS.SOLVER.CHECKPOINT_KEEP_LAST = 0
# Skip up to this many iterations whose loss is NaN or infinite (no weight update, counted as
# "nonfinite_skipped" in metrics.json) before stopping; 0 stops at the first.
DEFAULTS.SOLVER.SKIP_NONFINITE_ITERS = 0
# Images per batch, summed over all processes.
DEFAULTS.SOLVER.IMS_PER_BATCH = 16
# Automatic mixed precision on GPU.
DEFAULTS.SOLVER.AMP = _FvCfgNode()
# Enable autocast + grad scaling (CUDA only; ignored with a warning on CPU).
DEFAULTS.SOLVER.AMP.ENABLED = False
# Autocast dtype: "float16" or "bfloat16".
DEFAULTS.SOLVER.AMP.DTYPE = "float16"
# Gradient clipping.
DEFAULTS.SOLVER.CLIP_GRADIENTS = _FvCfgNode()
# Enable gradient clipping.
DEFAULTS.SOLVER.CLIP_GRADIENTS.ENABLED = False
# "value" or "norm".
DEFAULTS.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
# Clip threshold.
DEFAULTS.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
# L-p norm type for "norm" clipping.
DEFAULTS.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# World size the SOLVER values were written for (detectron2's key); on another world size
# IMS_PER_BATCH and BASE_LR scale linearly, iteration counts inversely (0 disables).
DEFAULTS.SOLVER.REFERENCE_WORLD_SIZE = 0
# Use channels_last memory format on GPU.
DEFAULTS.SOLVER.CHANNELS_LAST = False

# ---------------------------------------------------------------------------------------------
# Test
# ---------------------------------------------------------------------------------------------
DEFAULTS.TEST = _FvCfgNode()
# Evaluate every this many iterations during training (0: only at the end).
DEFAULTS.TEST.EVAL_PERIOD = 0
# VOC metric: True = the 2007 11-point AP, False = area under the curve (2010+).
DEFAULTS.TEST.VOC_USE_07_METRIC = True
# COCO-format test sets: also run the error analysis at each evaluation (TIDE's dAP per error
# type as the metrics bbox/dAP/cls ..., cocoapi's analysis plots and report.html in
# OUTPUT_DIR/inference/<dataset>, each category's PR curve in TensorBoard):
# docs/error_analysis.md. Off by default: the pictures take seconds per evaluation (15 s of
# CPU for COCO's 80 categories; the analysis itself costs less than the COCO evaluation).
DEFAULTS.TEST.ERROR_ANALYSIS = False
# Classification test modes, any of "center", "10crop", "multiscale".
DEFAULTS.TEST.CLS_MODES = ["center"]
# Shorter sides of the paper's fully-convolutional multi-scale test.
DEFAULTS.TEST.CLS_MULTISCALE_SIZES = [224, 256, 384, 480, 640]
# Images per batch at test time (per process).
DEFAULTS.TEST.IMS_PER_BATCH = 1

# ---------------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------------
# Engine: "builtin" (torchvision parts) or "detectron2" (the plugin; detectron2 must be built).
DEFAULTS.ENGINE = "builtin"
# Folder for checkpoints, logs, metrics and the resolved config.
DEFAULTS.OUTPUT_DIR = "./output"
# Random seed (negative: drawn from the clock and recorded in the log).
DEFAULTS.SEED = 0
# Print training metrics every this many iterations.
DEFAULTS.LOG_PERIOD = 20
# Let cuDNN benchmark convolution algorithms (faster for fixed sizes, not deterministic).
DEFAULTS.CUDNN_BENCHMARK = False
