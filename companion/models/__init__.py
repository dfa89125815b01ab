"""Models of the book. Each is an ``nn.Module`` whose ``forward`` returns an :class:`Output`.

``REGISTRY`` maps a class name to ``(model class, config class)`` so that checkpoints can
rebuild a model from its saved config (:func:`companion.train.load_checkpoint`).
"""
from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import Output
from companion.models.denoising import DenoisingAutoencoder, DenoisingAutoencoderConfig
from companion.models.pca import PCA
from companion.models.sparse import SparseAutoencoder, SparseAutoencoderConfig

REGISTRY = {
    "Autoencoder": (Autoencoder, AutoencoderConfig),
    "DenoisingAutoencoder": (DenoisingAutoencoder, DenoisingAutoencoderConfig),
    "SparseAutoencoder": (SparseAutoencoder, SparseAutoencoderConfig),
}

__all__ = ["REGISTRY", "Autoencoder", "AutoencoderConfig", "DenoisingAutoencoder",
           "DenoisingAutoencoderConfig", "Output", "PCA", "SparseAutoencoder", "SparseAutoencoderConfig"]
