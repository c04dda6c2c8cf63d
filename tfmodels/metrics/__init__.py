"""Evaluation metrics shared by recipes: BLEU, perplexity, COCO mAP, ..."""
from tfmodels.metrics.bleu import bleu, corpus_bleu
from tfmodels.metrics.coco_eval import CocoMetrics, coco_evaluate, to_coco
from tfmodels.metrics.mean_average_precision import MeanAveragePrecision
from tfmodels.metrics.perplexity import Perplexity
