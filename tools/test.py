"""Test a detector: the command line of mmdet's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show] [--show-dir DIR] [--cfg-options k=v ...] [--launcher pytorch]

On a CrowdHuman config it ends with one table row, AP50 / mMR / recall in
percent with one decimal (the full-precision numbers are in the log).

With ``--show-dir DIR`` it draws each test image twice, side by side: the
ground truth (green; ignore regions grey) and the detections scoring at
least ``--show-score-thr`` (default 0.5, readable in crowds; red), and
prints where the pictures went (WORK_DIR/TIMESTAMP/DIR).
"""
import argparse
import os
import os.path as osp
import warnings

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmlla  # noqa: F401  (registers the project's modules)
from mmlla.utils.checkpoint import (CheckpointError,
                                    check_is_checkpoint_file)
from mmlla.evaluation.functional import format_summary
from mmlla.utils import (check_checkpoint_matches_model, protect_runner,
                         setup_launch_env, teardown_distributed)


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation '
        '(tools/analysis_tools/eval_crowdhuman.py, eval_citypersons.py)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--show-score-thr', type=float, default=SHOW_SCORE_THR,
        help='--show / --show-dir: draw detections scoring at least this '
        f'(default {SHOW_SCORE_THR}; mmdet draws from 0.3, unreadable in '
        'crowds)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# --- first steps: readable pictures, short errors, quiet start -------------
SHOW_SCORE_THR = 0.5
README_DATA = 'README.md, section "Train and test on CrowdHuman"'
# Known, harmless warnings of our dependencies (tools only, not tests).
QUIET_WARNINGS = (
    r'.*pkg_resources is deprecated.*',
    r'.*Failed to (search|import) registry.*',
    r'.*torch\.meshgrid.*indexing.*',
    r'.*TypedStorage is deprecated.*',
    r'.*The `clip_object_border`.*',
    r'.*No module named .torchvision.*',
)


# ... and of mmengine's logger (its own deprecations, not ours to fix).
QUIET_LOG_MESSAGES = ('"FileClient" will be deprecated',
                      '"HardDiskBackend" is the alias')


def quiet_known_warnings(runner=None):
    """Filter the known warnings; with ``runner``, its logger's too."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings('ignore', message=pattern)
    if runner is not None:
        runner.logger.addFilter(lambda record: not any(
            m in record.getMessage() for m in QUIET_LOG_MESSAGES))


def _dataset_ann_files(dataset):
    """The annotation files a dataset config reads (wrappers unwrapped)."""
    if not isinstance(dataset, dict):
        return []
    inner = dataset.get('dataset') or dataset.get('datasets')
    if inner is not None:
        inner = inner if isinstance(inner, (list, tuple)) else [inner]
        return [f for d in inner for f in _dataset_ann_files(d)]
    ann = dataset.get('ann_file')
    if not ann or '://' in str(ann):
        return []
    root = dataset.get('data_root') or ''
    return [ann if osp.isabs(ann) else osp.join(root, ann)]


def check_data_exists(cfg, loaders, config_path):
    """One line, instead of a runner's traceback, when the data is missing."""
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for ann in _dataset_ann_files(loader.get('dataset')):
            if not osp.exists(ann):
                raise SystemExit(
                    f'error: {ann} not found (the annotations {config_path} '
                    f'reads). Put the data in place as in {README_DATA}; '
                    'without it, try `python tools/quick_start.py`.')


def _register_show_visualizer():
    """A DetLocalVisualizer for crowds: GT and detections apart, aligned."""
    import mmcv
    import numpy as np
    from mmdet.registry import VISUALIZERS
    from mmdet.visualization import DetLocalVisualizer

    if VISUALIZERS.get('CrowdShowVisualizer') is not None:
        return

    @VISUALIZERS.register_module(force=True)
    class CrowdShowVisualizer(DetLocalVisualizer):
        # Full-body boxes reach outside the picture: drawn as they are,
        # matplotlib widens the canvas and the panel comes out shrunk and
        # offset. Boxes are clipped to the image; labels are left out (a
        # crowd's labels hide it), the header counts them.
        GT_COLOR = (60, 220, 60)
        IGNORE_COLOR = (160, 160, 160)
        PRED_COLOR = (255, 60, 60)

        def _panel(self, image, boxes, color, title, face=False):
            self.set_image(image)
            h, w = image.shape[:2]
            if boxes is not None and len(boxes):
                boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
                boxes = boxes.detach().cpu().float().clone()
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
                if face:
                    self.draw_bboxes(boxes, edge_colors=color,
                                     face_colors=color, alpha=0.3)
                else:
                    self.draw_bboxes(boxes, edge_colors=color,
                                     line_widths=max(1, round(w / 400)))
            return self

        def add_datasample(self, name, image, data_sample=None,
                           draw_gt=True, draw_pred=True, show=False,
                           wait_time=0, out_file=None, pred_score_thr=0.3,
                           step=0):
            image = image.clip(0, 255).astype(np.uint8)
            font = max(10, image.shape[1] // 40)
            header = dict(facecolor='black', alpha=0.6)
            panels = []
            if draw_gt and data_sample is not None:
                gt = data_sample.get('gt_instances')
                ign = data_sample.get('ignored_instances')
                self._panel(image, ign.bboxes if ign is not None else None,
                            self.IGNORE_COLOR, '', face=True)
                drawn = self.get_image()
                self._panel(drawn, gt.bboxes if gt is not None else None,
                            self.GT_COLOR, '')
                self.draw_texts(
                    f'ground truth: {len(gt) if gt is not None else 0}',
                    np.array([4, 4]),
                    colors='white', font_sizes=font, bboxes=header)
                panels.append(self.get_image())
            if draw_pred and data_sample is not None:
                pred = data_sample.get('pred_instances')
                if pred is not None:
                    pred = pred[pred.scores >= pred_score_thr]
                self._panel(image, pred.bboxes if pred is not None else None,
                            self.PRED_COLOR, '')
                self.draw_texts(
                    f'detections (score >= {pred_score_thr:g}): '
                    f'{len(pred) if pred is not None else 0}',
                    np.array([4, 4]),
                    colors='white', font_sizes=font, bboxes=header)
                panels.append(self.get_image())
            drawn = np.concatenate(panels, axis=1) if panels else image
            if show:
                self.show(drawn, win_name=name, wait_time=wait_time)
            if out_file is not None:
                mmcv.imwrite(drawn[..., ::-1], out_file)
            else:
                self.add_image(name, drawn, step)


def show_dir_of(runner, show_dir):
    """Where mmdet's DetVisualizationHook writes ``--show-dir`` pictures.

    Made absolute on the hook: mmdet joins work_dir/timestamp onto it at
    every iteration, which nests a relative path deeper each batch.
    """
    from mmdet.engine.hooks import DetVisualizationHook
    out = osp.abspath(osp.join(runner.work_dir, runner.timestamp, show_dir))
    for hook in runner.hooks:
        if isinstance(hook, DetVisualizationHook):
            hook.test_out_dir = out
    return out
# ---------------------------------------------------------------------------


def trigger_visualization_hook(cfg, args):
    default_hooks = cfg.default_hooks
    if 'visualization' not in default_hooks:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks. '
            'refer to usage "visualization=dict(type=\'VisualizationHook\')"')
    visualization_hook = default_hooks['visualization']
    visualization_hook['draw'] = True
    visualization_hook['score_thr'] = args.show_score_thr
    _register_show_visualizer()
    cfg.visualizer.type = 'CrowdShowVisualizer'
    if args.show:
        visualization_hook['show'] = True
        visualization_hook['wait_time'] = args.wait_time
    if args.show_dir:
        visualization_hook['test_out_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()
    quiet_known_warnings()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl or .pickle file')
        dump = ConfigDict(type='DumpDetResults', out_file_path=args.out)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = [*cfg.test_evaluator, dump]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump]

    check_data_exists(cfg, ['test_dataloader'], args.config)
    if '://' not in args.checkpoint:
        try:  # not found / not a checkpoint: one line, before the runner
            check_is_checkpoint_file(args.checkpoint)
        except CheckpointError as e:
            raise SystemExit(f'error: {type(e).__name__}: {e}') from None
    setup_launch_env(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    quiet_known_warnings(runner)
    show_dir = show_dir_of(runner, args.show_dir) if args.show_dir else None
    # Load weights-only, never running the checkpoint's meta['config'].
    protect_runner(runner)
    # Fail early, and clearly, on a checkpoint of another model: mmengine
    # would only log missing keys and test random weights.
    try:
        check_checkpoint_matches_model(args.checkpoint, runner.model)
    except CheckpointError as e:
        raise SystemExit(f'error: {type(e).__name__}: {e}') from None
    metrics = runner.test()
    # the CrowdHuman or CityPersons summary row(s), in percent
    row = format_summary(metrics)
    if row is not None:
        runner.logger.info('full precision: ' + ', '.join(
            f'{k}={v:.6f}' for k, v in metrics.items()
            if isinstance(v, float)))
        print(row)
    if show_dir is not None:
        print(f'Pictures (ground truth | detections with score >= '
              f'{args.show_score_thr:g}): {show_dir}')


if __name__ == '__main__':
    main()
    # after a successful run only: a failed rank must not wait in a barrier
    teardown_distributed()
