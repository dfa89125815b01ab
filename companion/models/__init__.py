"""Models of the book. Each is an ``nn.Module`` whose ``forward`` returns an :class:`Output`.

``REGISTRY`` maps a class name to ``(model class, config class)`` so that checkpoints can
rebuild a model from its saved config (:func:`companion.train.load_checkpoint`).
"""
from companion.models.autoencoder import Autoencoder, AutoencoderConfig
from companion.models.base import EncoderDecoder, Model, Output, Prior
from companion.models.contractive import ContractiveAutoencoder, ContractiveAutoencoderConfig
from companion.models.denoising import DenoisingAutoencoder, DenoisingAutoencoderConfig
from companion.models.ksparse import KSparseAutoencoder, KSparseAutoencoderConfig, topk_sparsify
from companion.models.pca import PCA, PCAConfig
from companion.models.sparse import SparseAutoencoder, SparseAutoencoderConfig
from companion.models.pixelcnn import MaskedConv2d, PixelCNN, PixelCNNConfig, stack_condition
from companion.models.pixelsnail import PixelSNAIL, PixelSNAILConfig
from companion.models.vae import VAE, VAEConfig
from companion.models.vq import VQVAE, VectorQuantizer, VQVAEConfig, nearest_code
from companion.models.vqvae2 import VQVAE2, VQVAE2Config
from companion.models.tdvae import TDVAE, TDVAEConfig
from companion.models.sae import SAE, SAEConfig
from companion.models.fsq import FiniteScalarQuantizer

#: class name → (model class, config class), for checkpoints to rebuild a model from its config
REGISTRY = {cls.__name__: (cls, cls.config_class) for cls in (
    Autoencoder, DenoisingAutoencoder, SparseAutoencoder, KSparseAutoencoder, ContractiveAutoencoder, VAE, VQVAE,
    VQVAE2, TDVAE, PCA, PixelCNN, PixelSNAIL, SAE)}

__all__ = ["REGISTRY", "EncoderDecoder", "Model", "Prior", "PCAConfig", "PixelCNNConfig", "PixelSNAILConfig", "Autoencoder", "AutoencoderConfig", "ContractiveAutoencoder", "ContractiveAutoencoderConfig",
           "DenoisingAutoencoder", "KSparseAutoencoder",
           "KSparseAutoencoderConfig", "topk_sparsify",
           "DenoisingAutoencoderConfig", "Output", "PCA", "SparseAutoencoder", "SparseAutoencoderConfig",
           "VAE", "VAEConfig", "VQVAE", "VQVAEConfig", "VectorQuantizer", "nearest_code",
           "MaskedConv2d", "PixelCNN", "VQVAE2", "VQVAE2Config", "PixelSNAIL",
           "stack_condition", "TDVAE", "TDVAEConfig", "SAE", "SAEConfig", "FiniteScalarQuantizer"]
