"""Built-in plugin: video metrics (PSNR, SSIM, LMD, CSIM, blink rate, pose diversity)."""
