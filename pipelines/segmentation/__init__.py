"""Semantic segmentation data: sources, joint crops of image and label, VOC's colour map.

Elements are ``(image float32 [H, W, 3] in 0..255, class_map int32 [H, W])``; ``class_map`` holds
a class id per pixel (0 = background in every source here) or ``crop.IGNORE`` (255) where no
loss or metric looks.
"""
