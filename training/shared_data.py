"""Which built-in import config reads each file of ``../shared/data`` (found by
:func:`triage.paths.shared_data_dir`).

The row counts are the ones the data README states; the import reports ``read`` must equal
them (records may then be dropped, each with a reason). Code that needs this data skips with a
clear message when it is absent.
"""
from __future__ import annotations

# (path under shared/data, built-in import config, rows per the data README)
SHARED_FILES: tuple[tuple[str, str, int], ...] = (
    ("heimao/train.csv", "heimao", 4081),
    ("heimao/dev.csv", "heimao", 511),
    ("car_complaints/car_complaints_train.csv", "car_complaints", 3733),
    ("gov_messages/messages_with_replies.xlsx", "gov_replies", 2816),
    ("gov_messages/messages_with_votes.xlsx", "gov_votes", 4326),
    ("gov_messages/messages_unlabelled.xlsx", "gov_unlabelled", 2801),
    ("smp2020_ewect/train.csv", "smp2020_train", 34869),
    ("smp2020_ewect/usual_eval_labeled.json", "smp2020_eval", 2000),
    ("smp2020_ewect/virus_eval_labeled.json", "smp2020_eval", 2000),
    ("cluemotion/valid.jsonl", "cluemotion", 3966),
    ("reviews/online_shopping_10_cats.csv", "reviews_shopping", 62774),
    ("reviews/ChnSentiCorp_htl_all.csv", "reviews_hotel", 7766),
    ("english_severity/xci.csv", "english_severity", 3448),
)
