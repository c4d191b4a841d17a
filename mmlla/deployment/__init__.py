"""Export of mmlla's detectors as one ONNX graph, post-processing included
(README, "Deploy"). Imported explicitly (``import mmlla.deployment``), not by
``import mmlla``: it is only needed to export."""
from .end2end_detector import (End2EndDetector, NotExportableError,
                               check_exportable)
from .onnx_export import (DEFAULT_OPSET, INPUT_NAME, NMS_OP, OUTPUT_NAMES,
                          POSTPROCESS_KEY, PREPROCESS_KEY, default_input_hw,
                          export_onnx, load_detector, onnx_op_types,
                          preprocess_spec, read_metadata,
                          same_detections)
from .onnx_nms import ONNXNMSOp, batched_nms_keep

__all__ = [
    'DEFAULT_OPSET', 'End2EndDetector', 'INPUT_NAME', 'NMS_OP',
    'NotExportableError', 'ONNXNMSOp', 'OUTPUT_NAMES', 'POSTPROCESS_KEY',
    'PREPROCESS_KEY', 'batched_nms_keep', 'check_exportable',
    'default_input_hw', 'export_onnx', 'load_detector', 'onnx_op_types',
    'preprocess_spec', 'read_metadata', 'same_detections'
]
