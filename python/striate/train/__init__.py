"""Training: ``fit`` and ``evaluate``, the per-epoch ``History`` and its figures; ``fit_gan`` for GANs,
``fit_stackgan`` for StackGAN's stages, ``fit_lapgan`` for LAPGAN's levels.

    from striate.train import fit, evaluate
    history = fit(model, train_loader, optimizer, epochs=5, val_loader=test_loader,
                  checkpoint_dir="runs/x")
    history.save("runs/x")          # history.json + curves.png
"""
from .gan import (DiscriminatorSaturationWarning, GANHistory, GANThresholds, GANWarning, ModeCollapseWarning,
                  VanishingGradientWarning, fit_gan, generator_loss, mean_pairwise_distance)
from .history import History
from .loop import CHECKPOINT_NAME, checkpoint_path, evaluate, fit
from .lapgan import fit_lapgan
from .stackgan import fit_stackgan
from .plots import (confusion_matrix, save_confusion_png, save_curves_png, save_prediction_grid,
                    save_gan_curves_png, save_image_grid, save_segmentation_overlay)

__all__ = ["fit", "evaluate", "History", "confusion_matrix", "save_confusion_png", "save_curves_png",
           "save_prediction_grid", "save_segmentation_overlay", "checkpoint_path", "CHECKPOINT_NAME",
           "fit_gan", "generator_loss", "mean_pairwise_distance", "GANHistory", "GANThresholds", "GANWarning",
           "VanishingGradientWarning", "DiscriminatorSaturationWarning", "ModeCollapseWarning",
           "save_image_grid", "save_gan_curves_png", "fit_stackgan", "fit_lapgan"]
