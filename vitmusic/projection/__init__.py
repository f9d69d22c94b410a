"""The trainable bridge from encoder embeddings to generator conditioning, plus the PCA-whitening baseline."""
