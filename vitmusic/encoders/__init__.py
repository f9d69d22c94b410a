"""Pretrained vision encoders (VideoMAE, ViT, CLIP) returning ``(embeds [B, T, D], mask [B, T])``."""
