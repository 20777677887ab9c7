"""Built-in plugin: contrastive lip-sync discriminator, its pretraining stage and the SyncNet-protocol metric."""
