"""What the pedestrian metrics share."""
from mmengine.logging import MMLogger


def warn_unpredicted(logger: MMLogger, out: dict, ann_file: str) -> None:
    """Warn when some images of the annotation file got no prediction.

    Both metrics evaluate such an image as an image without detections (its
    ground truths count as misses), as the reference toolkits do; the
    warning says how many there were.

    Args:
        logger: Where to warn.
        out: The evaluation's output, with ``num_imgs`` (images of the
            annotation file) and ``num_predicted`` (images with a
            prediction).
        ann_file: The annotation file, named in the message.
    """
    missing = out['num_imgs'] - out['num_predicted']
    if missing > 0:
        logger.warning(
            f'{missing} of the {out["num_imgs"]} images of {ann_file} have '
            'no prediction: they are evaluated as images without detections')
