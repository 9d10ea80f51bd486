"""Data: torchvision datasets by name (MNIST ships in the repo), transforms, and the Lightning datamodule."""

from cnnlab.data.datamodule import ImageDataModule, datamodule_from_config
from cnnlab.data.datasets import DATASETS, DatasetSpec, load_split

__all__ = ["DATASETS", "DatasetSpec", "ImageDataModule", "datamodule_from_config", "load_split"]
