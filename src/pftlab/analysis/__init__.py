"""The study's analyses, each a function that writes a CSV and a PNG: accuracy against epoch,
distortion against the drop in global accuracy, and the loss-flooding control."""
