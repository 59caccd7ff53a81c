"""Delivery: turn queued matches into Telegram messages (render, cluster, digest) and send them."""
