# Copyright (c) facecraft_d2 contributors.
from detectron2.config import CfgNode as CN

from .data.splits import VAL_FRACTION


def add_facecraft_config(cfg):
    """
    Add the config keys of facecraft_d2 to a detectron2 config (in place), one component at a
    time (as DensePose's ``add_densepose_config``). Every key has a one-line comment; YAML
    files under ``configs/`` override them.
    """
    add_zf_config(cfg)
    add_joint_rcnn_config(cfg)
    add_rcnn_input_config(cfg)
    add_cascade_net_config(cfg)
    add_cascade_data_config(cfg)
    add_cascade_sampler_config(cfg)
    add_cascade_test_config(cfg)
    add_evaluation_config(cfg)


def add_zf_config(cfg):
    """``MODEL.ZF``: the ZF-net backbone."""
    _C = cfg

    # ---------------------------------------------------------------------------- #
    # ZF-net backbone (Zeiler & Fergus 2014, as in Faster R-CNN, without LRN layers)
    # ---------------------------------------------------------------------------- #
    _C.MODEL.ZF = CN()
    # Multiplier of every conv width (1.0 = ZF's 96/256/384/384/256); 0.25 is the slim CPU variant.
    _C.MODEL.ZF.WIDTH_MULT = 1.0
    # Which conv outputs to return: any of "conv1" … "conv5" (strides 4, 16, 16, 16, 16 after pools).
    _C.MODEL.ZF.OUT_FEATURES = ["conv5"]
    # Normalization after each conv: "" (none, as ZF without LRN), "BN", "FrozenBN", "GN", "SyncBN".
    _C.MODEL.ZF.NORM = ""



def add_joint_rcnn_config(cfg):
    """``MODEL.JOINT_RCNN``: the jointly trained RPN + Fast R-CNN."""
    _C = cfg

    # ---------------------------------------------------------------------------- #
    # Jointly trained RPN + Fast R-CNN (meta-architecture "JointRCNN", paper section 5)
    # ---------------------------------------------------------------------------- #
    _C.MODEL.JOINT_RCNN = CN()
    # Branches whose losses a training step optimizes: "rpn" and/or "frcnn" (both: joint step).
    _C.MODEL.JOINT_RCNN.TRAIN_BRANCHES = ["rpn", "frcnn"]
    # Parts kept fixed: any of "backbone", "proposal_generator", "roi_heads" (four-step steps 3-4).
    _C.MODEL.JOINT_RCNN.FROZEN = []
    # Loss weights (lambda_rpn, lambda_frcnn) of the joint loss, fused as MODEL.FACECRAFT.LOSS_WEIGHTS.
    _C.MODEL.JOINT_RCNN.LOSS_WEIGHTS = [1.0, 1.0]

    # Ignore regions (modeling/ignore_regions.py): crowd boxes and faces too small for the
    # smallest anchor are neither faces nor background. Needs the proposal generator
    # "IgnoreRegionRPN"; the R-CNN train loader then keeps them (data/rcnn_augment.py).
    _C.MODEL.IGNORE_REGIONS = CN()
    # Off: detectron2's behaviour (crowd boxes dropped, i.e. background; every face a face).
    _C.MODEL.IGNORE_REGIONS.ENABLED = False
    # Faces with sqrt(w * h) below this many pixels, at the training scale, are ignore regions.
    _C.MODEL.IGNORE_REGIONS.MIN_FACE = 0.0
    # Anchors and RoIs that would be background are not sampled when ignore regions cover more
    # than this fraction of their area.
    _C.MODEL.IGNORE_REGIONS.IOA = 0.5


def add_rcnn_input_config(cfg):
    """``INPUT.PHOTOMETRIC``: colour jitter of the R-CNN training images (data/rcnn_augment.py)."""
    _C = cfg

    # Applied after detectron2's resize and flip; 0 turns a jitter off.
    _C.INPUT.PHOTOMETRIC = CN()
    # Pixels times U(1 - b, 1 + b).
    _C.INPUT.PHOTOMETRIC.BRIGHTNESS = 0.0
    # Blended with the image's mean by U(1 - c, 1 + c).
    _C.INPUT.PHOTOMETRIC.CONTRAST = 0.0
    # Blended with its own luma image by U(1 - s, 1 + s).
    _C.INPUT.PHOTOMETRIC.SATURATION = 0.0
    # Probability that the image becomes grey (its luma in all three channels).
    _C.INPUT.PHOTOMETRIC.GRAYSCALE_PROB = 0.0



def add_cascade_net_config(cfg):
    """``MODEL.FACECRAFT`` and ``.NET``: the cascade's network, labels and joint loss."""
    _C = cfg

    # ---------------------------------------------------------------------------- #
    # FaceCraft cascade (meta-architecture "FaceCraftCascade", paper sections 4.1-4.3)
    # ---------------------------------------------------------------------------- #
    _C.MODEL.FACECRAFT = CN()
    _C.MODEL.FACECRAFT.NET = CN()
    # Width of x12's two conv layers (its feature is X12_CHANNELS x 1 x 1; paper: 16).
    _C.MODEL.FACECRAFT.NET.X12_CHANNELS = 16
    # Width of x24's conv layer (after Li et al.'s 24-net).
    _C.MODEL.FACECRAFT.NET.X24_CHANNELS = 64
    # x24's conv layers as [channels, kernel, max pooling 3x3/2 after it (1) or not (0)], in
    # order, instead of Li et al.'s one 5x5 conv of X24_CHANNELS and a pooling ([]: that one).
    # The paper fixes only x24's input (24x24) and "24fc"; e.g. MTCNN's R-Net body is
    # [[28, 3, 1], [48, 3, 1], [64, 2, 0]].
    _C.MODEL.FACECRAFT.NET.X24_CONVS = []
    # Width of x24's fully connected layer "24fc" (paper: 128).
    _C.MODEL.FACECRAFT.NET.X24_FC = 128
    # Widths of x48's two conv layers (after Li et al.'s 48-net).
    _C.MODEL.FACECRAFT.NET.X48_CHANNELS = [64, 64]
    # x48's conv layers as [channels, kernel, max pooling 3x3/2 after it (1) or not (0)], in
    # order, instead of Li et al.'s two 5x5 convs of X48_CHANNELS, each with a pooling ([]:
    # those). E.g. MTCNN's O-Net body is [[32, 3, 1], [64, 3, 1], [64, 3, 1], [128, 2, 0]].
    _C.MODEL.FACECRAFT.NET.X48_CONVS = []
    # Width of x48's fully connected layer "48fc" (paper: 256).
    _C.MODEL.FACECRAFT.NET.X48_FC = 256
    # Dropout probability before every classification / regression layer.
    _C.MODEL.FACECRAFT.NET.DROPOUT = 0.25
    # Per branch (x12, x24, x48): a patch is a face when its IoU with one exceeds this
    # (the paper's 0.8, lowered for later branches so that they learn from harder samples).
    _C.MODEL.FACECRAFT.POS_IOU = [0.8, 0.7, 0.65]
    # A patch is background when its max IoU with the faces is below this (paper: 0.5).
    _C.MODEL.FACECRAFT.NEG_IOU = 0.5
    # Threshold-control layers: face probability needed after x12 / after x24 for a patch
    # to count in the next branch's losses (paper: 0.1 and 0.003).
    _C.MODEL.FACECRAFT.TRAIN_THRESHOLDS = [0.1, 0.003]
    # Loss weights lambda_1..3 of the joint loss (equation 6).
    _C.MODEL.FACECRAFT.LOSS_WEIGHTS = [1.0, 1.0, 1.0]
    # Weight of the box-regression term in each branch's loss (lambda of equation 1).
    _C.MODEL.FACECRAFT.REG_LOSS_WEIGHT = 1.0
    # Transition point of the smooth-L1 regression loss.
    _C.MODEL.FACECRAFT.SMOOTH_L1_BETA = 1.0
    # Branches whose losses are optimized: all three for joint training, one for a greedy stage.
    _C.MODEL.FACECRAFT.TRAIN_BRANCHES = ["x12", "x24", "x48"]
    # Branches kept fixed (greedy training of a later stage freezes the earlier ones).
    _C.MODEL.FACECRAFT.FROZEN_BRANCHES = []
    # Patches with IoU >= this (below the branch's POS_IOU) are part faces: they train the box
    # regression only; 1.0 = no part faces (regression on positives only).
    _C.MODEL.FACECRAFT.PART_IOU = 1.0
    # Online hard example mining: the fraction of each branch's valid patches, those with the
    # highest classification loss, that count in its loss (1.0 = all; MTCNN: 0.7).
    _C.MODEL.FACECRAFT.OHEM_FRACTION = 1.0



def add_cascade_data_config(cfg):
    """``MODEL.FACECRAFT.DATA``: training samples from crop caches, hard-negative mining, augmentation."""
    _C = cfg

    # Training from crop caches (facecraft_d2/data/crop_cache.py, tools/build_crop_cache.py)
    _C.MODEL.FACECRAFT.DATA = CN()
    # Crop-cache folders to train on; empty: the online window sampler (SAMPLER.*) instead.
    _C.MODEL.FACECRAFT.DATA.CACHE_DIRS = []
    # Negatives : part faces : positives in each batch of SAMPLER.BATCH_SIZE (MTCNN: 3 : 1 : 1).
    _C.MODEL.FACECRAFT.DATA.RATIOS = [3, 1, 1]
    # Faces with sqrt(w*h) below this (px) are ignore regions, never samples.
    _C.MODEL.FACECRAFT.DATA.MIN_FACE = 20.0
    # Random squares anywhere in each image (background negatives).
    _C.MODEL.FACECRAFT.DATA.RANDOM_PER_IMAGE = 40
    # Random squares in each face-free image (MODEL.FACECRAFT.DATA.BACKGROUND_SETS).
    _C.MODEL.FACECRAFT.DATA.BACKGROUND_PER_IMAGE = 150
    # Datasets of DATASETS.TRAIN that hold face-free images only.
    _C.MODEL.FACECRAFT.DATA.BACKGROUND_SETS = ["face_negatives"]
    # Datasets of DATASETS.TRAIN that are tight face crops (landmark sets): only squares
    # jittered around their face are cut from them, no negatives, no mining.
    _C.MODEL.FACECRAFT.DATA.LANDMARK_SETS = ["mtfl_train"]
    # Datasets of DATASETS.TRAIN whose crops train face classification only, not the box
    # regression (e.g. the landmark sets, whose square landmark boxes follow another box
    # convention than the benchmarks' annotations). Needs caches that record each crop's set.
    _C.MODEL.FACECRAFT.DATA.CLASSIFICATION_ONLY_SETS = []
    # Squares jittered around each face (positives and part faces).
    _C.MODEL.FACECRAFT.DATA.PER_FACE = 10
    # Max centre shift of a jittered square, in face sides.
    _C.MODEL.FACECRAFT.DATA.SHIFT = 0.2
    # Max |ln| of a jittered square's side over the face's side.
    _C.MODEL.FACECRAFT.DATA.LOG_SCALE = 0.2
    # Squares near each face (its parts, its neighbours): mostly hard negatives.
    _C.MODEL.FACECRAFT.DATA.NEAR_PER_FACE = 4
    # A negative may cover ignore regions with at most this fraction of its area.
    _C.MODEL.FACECRAFT.DATA.IGNORE_IOA = 0.3
    # Boxes with more than this fraction of their side outside the image are dropped.
    _C.MODEL.FACECRAFT.DATA.MAX_OUTSIDE = 0.25
    # Hard-negative mining: run the model's test pipeline up to this stage ("x12" or "x24";
    # "" = none) over each full training image and keep its boxes as samples.
    _C.MODEL.FACECRAFT.DATA.MINE_UPTO = ""
    # Stage score thresholds of that mining run (x12, x24, x48); empty = TEST.SCORE_THRESHOLDS.
    # Lets a stage's test thresholds change without changing what its cache was mined with.
    _C.MODEL.FACECRAFT.DATA.MINE_SCORE_THRESHOLDS = []
    # At most this many mined negatives per image (a random subset; mined faces are all kept).
    _C.MODEL.FACECRAFT.DATA.MINED_NEGATIVES_PER_IMAGE = 60
    _C.MODEL.FACECRAFT.DATA.AUGMENT = CN()
    # Flip crops horizontally with probability 0.5.
    _C.MODEL.FACECRAFT.DATA.AUGMENT.FLIP = True
    # Brightness jitter: pixels times U(1 - b, 1 + b).
    _C.MODEL.FACECRAFT.DATA.AUGMENT.BRIGHTNESS = 0.25
    # Contrast jitter around the crop's mean grey.
    _C.MODEL.FACECRAFT.DATA.AUGMENT.CONTRAST = 0.25
    # Saturation jitter around the crop's own grey image.
    _C.MODEL.FACECRAFT.DATA.AUGMENT.SATURATION = 0.25
    # Probability that a crop is turned grey.
    _C.MODEL.FACECRAFT.DATA.AUGMENT.GRAYSCALE_PROB = 0.1



def add_cascade_sampler_config(cfg):
    """``MODEL.FACECRAFT.SAMPLER``: batches, the validation split and the online window sampler."""
    _C = cfg

    _C.MODEL.FACECRAFT.SAMPLER = CN()
    # Side (px) of the smallest square sliding window; faces with sqrt(w*h) below it are never positives.
    _C.MODEL.FACECRAFT.SAMPLER.MIN_WINDOW = 12
    # Window sizes per factor 2 of size (the paper's pyramid "interval of 5").
    _C.MODEL.FACECRAFT.SAMPLER.SCALES_PER_OCTAVE = 5
    # Window stride as a fraction of the window side (the paper: stride 8 on 48x48).
    _C.MODEL.FACECRAFT.SAMPLER.STRIDE_FRACTION = 8 / 48
    # Windows with max IoU >= this are positives; the model relabels them per branch (POS_IOU).
    _C.MODEL.FACECRAFT.SAMPLER.POS_IOU_MIN = 0.65
    # Windows with max IoU below this are negatives.
    _C.MODEL.FACECRAFT.SAMPLER.NEG_IOU = 0.5
    # A negative may cover ignore regions (iscrowd, too-small faces) with at most this fraction of its area.
    _C.MODEL.FACECRAFT.SAMPLER.IGNORE_IOA = 0.3
    # Extra positives per face from random shift/scale of its square box (0 = grid windows only, as in the paper).
    _C.MODEL.FACECRAFT.SAMPLER.JITTER_POSITIVES = 4
    # At most this many positives per image (random subset).
    _C.MODEL.FACECRAFT.SAMPLER.MAX_POSITIVES_PER_IMAGE = 16
    # Negatives per image (random subset of the windows that qualify).
    _C.MODEL.FACECRAFT.SAMPLER.NEGATIVES_PER_IMAGE = 128
    # Hard negatives drawn around each usable face (its parts, boxes holding it with background,
    # its neighbourhood: max IoU < NEG_IOU); 0 = grid negatives only, as in the paper.
    _C.MODEL.FACECRAFT.SAMPLER.NEAR_NEGATIVES_PER_FACE = 0
    # Max centre shift of a near negative, in face sides.
    _C.MODEL.FACECRAFT.SAMPLER.NEAR_SHIFT = 1.0
    # Max |log2| of a near negative's side over the face's side (1.5: 0.35x to 2.8x the face).
    _C.MODEL.FACECRAFT.SAMPLER.NEAR_LOG2_SCALE = 1.5
    # Side of the training patches (the x48 input; the model pools them to 24 and 12).
    _C.MODEL.FACECRAFT.SAMPLER.INPUT_SIZE = 48
    # Flip each patch horizontally with probability 0.5 (tx is negated too).
    _C.MODEL.FACECRAFT.SAMPLER.FLIP = True
    # Fraction of positives in each training batch (the paper: about 5%).
    _C.MODEL.FACECRAFT.SAMPLER.POSITIVE_FRACTION = 0.05
    # Patches per iteration, summed over all GPUs.
    _C.MODEL.FACECRAFT.SAMPLER.BATCH_SIZE = 256
    # Negative patches of many images mixed in the shuffle pool before drawing a batch.
    _C.MODEL.FACECRAFT.SAMPLER.POOL_SIZE = 4096
    # Fraction of training images held out for validation by a hash of image_id (never trained on).
    _C.MODEL.FACECRAFT.SAMPLER.VAL_FRACTION = VAL_FRACTION
    # Training images used to measure the regression targets' mean and std before training.
    _C.MODEL.FACECRAFT.SAMPLER.DELTA_STATS_IMAGES = 200



def add_cascade_test_config(cfg):
    """``MODEL.FACECRAFT.TEST``: the cascade's test pipeline (CascadeInference)."""
    _C = cfg

    _C.MODEL.FACECRAFT.TEST = CN()
    # Smallest face searched, in pixels of the input image (sets the pyramid's first scale).
    _C.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE = 24
    # Ratio between the scales of successive pyramid levels.
    _C.MODEL.FACECRAFT.TEST.PYRAMID_FACTOR = 0.709
    # Resize the pyramid levels as 8-bit images (the input rounded to whole grey levels, each
    # level too): the same anti-aliasing filter as on floats, levels within one grey level,
    # about 6x faster on CPUs (PyTorch vectorizes uint8 channels-last resizing).
    _C.MODEL.FACECRAFT.TEST.PYRAMID_UINT8 = False
    # Face probability a window needs to pass stage x12, x24 and x48.
    _C.MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS = [0.3, 0.1, 0.05]
    # Response-map max pooling kernel after x12 (paper: 2, about NMS at IoU 0.5; 1 = off).
    _C.MODEL.FACECRAFT.TEST.POOL_KERNEL = 2
    # Crops for x24/x48 (paper 6.5): "accurate" resizes each box from the image; "fast"
    # resamples it from the pyramid level just large enough; "copy" copies 24/48 px from the
    # nearest pyramid level without resampling (the paper's literal fast mode).
    _C.MODEL.FACECRAFT.TEST.CROP_MODE = "accurate"
    # At most this many x12 proposals per image go to x24 (the highest-scoring).
    _C.MODEL.FACECRAFT.TEST.MAX_PROPOSALS = 2000
    # NMS IoU over the boxes leaving x12 and x24, across pyramid levels (1.0 = off, as the paper).
    _C.MODEL.FACECRAFT.TEST.STAGE_NMS_THRESH = 0.7
    # IoU threshold of the final NMS.
    _C.MODEL.FACECRAFT.TEST.NMS_THRESH = 0.3
    # Run the networks in bfloat16 at test time (torch.autocast; CPUs): scores and boxes stay
    # float32.
    _C.MODEL.FACECRAFT.TEST.BFLOAT16 = False
    # Box voting after the final NMS: each kept box becomes the score-weighted mean of the
    # boxes overlapping it at IoU >= this (1.0 = off).
    _C.MODEL.FACECRAFT.TEST.BOX_VOTING_THRESH = 1.0
    # After the final NMS, drop boxes lying inside a higher-scoring box by more than this
    # fraction of their area (face parts inside a face; 1.0 = off).
    _C.MODEL.FACECRAFT.TEST.CONTAINMENT_THRESH = 1.0
    # Detections kept per image after the final NMS.
    _C.MODEL.FACECRAFT.TEST.DETECTIONS_PER_IMAGE = 750
    # Run the test pipeline's convs and poolings in the channels-last memory layout (same
    # outputs; 2-3x faster on CPUs, mostly in max pooling). False: PyTorch's default NCHW.
    _C.MODEL.FACECRAFT.TEST.CHANNELS_LAST = True
    # Run x12 once per image on all pyramid levels packed into one mosaic image, instead of once
    # per level (less per-call overhead; softmax and pooling stay within each level). The same
    # boxes bit for bit with CHANNELS_LAST on one CPU thread; where the convolution's rounding
    # depends on the image size or the threads' split (NCHW, GPU, several threads on a loaded
    # CPU) scores may differ in the last bits (~1e-6). False: per level.
    _C.MODEL.FACECRAFT.TEST.X12_MOSAIC = True
    # Stages whose face probabilities give a detection's final score, as their geometric mean:
    # ["x48"] ranks by x48 alone; ["x24", "x48"] also by x24, which ranks held-out faces above
    # background better for the shipped cascades (configs/cascade/*.yaml, tools/tune_cascade.py).
    _C.MODEL.FACECRAFT.TEST.SCORE_STAGES = ["x48"]
    # Later stages whose face probability is the mean over each crop and its mirror image (test-
    # time flip: one more forward pass of that stage). ["x48"] costs about a tenth of the time
    # and ranks held-out faces above background better for the shipped cascades.
    _C.MODEL.FACECRAFT.TEST.FLIP_STAGES = []



def add_evaluation_config(cfg):
    """``TEST.FDDB`` / ``TEST.AFW``: the benchmark evaluators."""
    _C = cfg

    # ---------------------------------------------------------------------------- #
    # Benchmark evaluators (facecraft_d2.evaluation), chosen by the dataset's evaluator_type
    # ---------------------------------------------------------------------------- #
    _C.TEST.FACES = CN()
    # Default score threshold of FaceDetector and `facecraft detect` (the shipped cascades'
    # is chosen on the validation split: few false boxes at high recall, see MODEL_ZOO.md).
    _C.TEST.FACES.SCORE_THRESH = 0.9
    _C.TEST.FDDB = CN()
    # Number of images of the full FDDB benchmark; TPR is also reported at 1000*n/this FP.
    _C.TEST.FDDB.NUM_TOTAL_IMAGES = 2845
    _C.TEST.AFW = CN()
    # IoU thresholds at which AFW-protocol AP is reported (0.3: the paper, 0.5: Mathias et al.).
    _C.TEST.AFW.IOU_THRESHOLDS = [0.3, 0.5]
    # Ground-truth faces narrower or shorter than this (pixels) are ignored by the AFW protocol.
    _C.TEST.AFW.MIN_FACE_SIZE = 30
def build_config(config_file=None, opts=(), device=None):
    """
    The one way to build a facecraft_d2 config: Detectron2's defaults, ``add_facecraft_config``,
    then ``config_file`` (chained through ``_BASE_``) and the ``KEY VALUE`` overrides ``opts``.

    Args:
        config_file (str): a YAML config, or None for the defaults.
        opts (list[str]): overrides, as on Detectron2's command lines.
        device (str): MODEL.DEVICE to set; "cuda" falls back to the CPU when CUDA is missing.
    Returns:
        CfgNode (not frozen).
    """
    import torch
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_facecraft_config(cfg)
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if device is not None:
        cfg.MODEL.DEVICE = device
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    return cfg
