"""Classification data (ImageNet / CIFAR-10 / digits pretraining): transforms, datasets,
loaders and their config builders. The readers and dataset names are in
resnet_det.data.datasets, as for detection."""

from .build import (
    build_classification_test_loader,
    build_classification_train_loader,
    classification_test_loader,
    classification_train_loader,
    get_classification_dicts,
)
from .dataset import (
    ClassificationTestDataset,
    ClassificationTrainDataset,
    collate_classification,
    load_classification_image,
)
from .transforms import (
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    TEST_MODES,
    PCALighting,
    build_classification_transform,
)

__all__ = [
    "build_classification_test_loader",
    "build_classification_train_loader",
    "classification_test_loader",
    "classification_train_loader",
    "get_classification_dicts",
    "ClassificationTestDataset",
    "ClassificationTrainDataset",
    "collate_classification",
    "load_classification_image",
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "TEST_MODES",
    "PCALighting",
    "build_classification_transform",
]
