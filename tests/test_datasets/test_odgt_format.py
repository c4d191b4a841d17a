"""The two ignore rules of the .odgt format differ on purpose
(docs/algorithms.md section 6): training looks at extra.ignore only,
evaluation also at the tag."""
import pytest

from mmlla.datasets.formats.odgt import (BACKGROUND, IGNORE, PERSON,
                                         check_body, eval_tag,
                                         is_train_ignore)


@pytest.mark.parametrize('ann,train_ignore,tag', [
    (dict(tag='person'), False, PERSON),
    (dict(tag='person', extra=dict(ignore=1)), True, IGNORE),
    (dict(tag='mask', extra=dict(ignore=0)), False, IGNORE),
    (dict(tag='mask', extra=dict(ignore=1)), True, IGNORE),
    (dict(tag='background'), False, BACKGROUND),
    (dict(tag='background', extra=dict(ignore=2)), True, IGNORE),
    (dict(tag='person', head_attr=dict(ignore=1)), False, PERSON),
])
def test_training_and_evaluation_ignore_rules(ann, train_ignore, tag):
    assert is_train_ignore(ann) is train_ignore
    assert eval_tag(ann) == tag


def test_head_body_also_reads_head_attr():
    ann = dict(tag='person', head_attr=dict(ignore=1))
    assert is_train_ignore(ann, 'head') is True
    assert eval_tag(ann, 'head') == IGNORE
    assert check_body('head') == 'head'
    with pytest.raises(ValueError, match=r"body must be one of .*'torso'"):
        check_body('torso')
