from .crowdhuman_mr import (BACKGROUND, IGNORE, JI_SCORE_THRS, MR_REFERENCES,
                            PERSON, ImageGT, Prediction,
                            accumulate_crowdhuman, accumulate_jaccard_index,
                            box_overlaps_f32, clip_boxes, eval_tag,
                            evaluate_crowdhuman, jaccard_index_image,
                            load_crowdhuman_gt, match_crowdhuman_image,
                            parse_crowdhuman_record)
from .safe_pickle import (UnsafePickleError, load_results_pickle,
                          loads_results_pickle)

__all__ = [
    'MR_REFERENCES', 'JI_SCORE_THRS', 'PERSON', 'BACKGROUND', 'IGNORE',
    'ImageGT', 'Prediction', 'eval_tag', 'parse_crowdhuman_record',
    'load_crowdhuman_gt', 'clip_boxes', 'box_overlaps_f32',
    'match_crowdhuman_image', 'accumulate_crowdhuman', 'jaccard_index_image',
    'accumulate_jaccard_index', 'evaluate_crowdhuman', 'UnsafePickleError',
    'load_results_pickle', 'loads_results_pickle'
]
