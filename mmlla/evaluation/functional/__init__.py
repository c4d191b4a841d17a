from .crowdhuman_mr import (CHUNK_ELEMS, JI_SCORE_THRS, MR_REFERENCES,
                            ImageGT, Prediction, accumulate_crowdhuman,
                            accumulate_jaccard_index, box_overlaps_f32,
                            check_iou_thr, check_prediction, chunk_rows_for,
                            clip_boxes, crowddet_overlaps,
                            evaluate_crowdhuman, jaccard_index_image,
                            load_crowdhuman_gt, match_crowdhuman_image,
                            max_weight_matching, parse_crowdhuman_record)
from .safe_pickle import (UnsafePickleError, load_results_pickle,
                          loads_results_pickle)
from .citypersons_mr import (FPPI_REFS, HEIGHT_MARGIN, MAX_DETS, SETUPS,
                             CityPersonsImageGT, CityPersonsPrediction,
                             check_detections, check_setups,
                             citypersons_image_id,
                             evaluate_citypersons, load_citypersons_gt,
                             log_average_miss_rate, match_citypersons_image,
                             overlaps_xywh, top_detections, xyxy_to_xywh)
from .summary import (format_citypersons_row, format_crowdhuman_row,
                      format_summary)

__all__ = [
    'MR_REFERENCES', 'JI_SCORE_THRS', 'CHUNK_ELEMS', 'ImageGT', 'Prediction',
    'parse_crowdhuman_record', 'load_crowdhuman_gt', 'clip_boxes',
    'box_overlaps_f32', 'crowddet_overlaps', 'chunk_rows_for',
    'match_crowdhuman_image', 'accumulate_crowdhuman', 'max_weight_matching',
    'jaccard_index_image', 'accumulate_jaccard_index', 'check_iou_thr',
    'check_prediction', 'evaluate_crowdhuman', 'UnsafePickleError',
    'load_results_pickle', 'loads_results_pickle', 'SETUPS', 'HEIGHT_MARGIN',
    'MAX_DETS', 'FPPI_REFS', 'CityPersonsImageGT', 'CityPersonsPrediction',
    'citypersons_image_id', 'check_setups', 'load_citypersons_gt',
    'check_detections', 'overlaps_xywh', 'xyxy_to_xywh', 'top_detections',
    'match_citypersons_image', 'log_average_miss_rate',
    'evaluate_citypersons', 'format_crowdhuman_row',
    'format_citypersons_row', 'format_summary'
]
