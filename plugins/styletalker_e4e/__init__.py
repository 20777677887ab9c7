"""Built-in plugin: e4e / pSp image encoder, its training stages and checkpoint importers."""
