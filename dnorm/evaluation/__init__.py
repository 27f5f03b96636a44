"""Evaluation of trained experiments on held-out test subjects (SPEC sections 5 and 6).

- :mod:`~dnorm.evaluation.plan`: which subjects, seeds and experiments each table uses.
- :mod:`~dnorm.evaluation.segment`: whole-volume prediction of one test subject, as NIfTI.
- :mod:`~dnorm.evaluation.scores`: per-subject Dice and surface distances.
- :mod:`~dnorm.evaluation.bias`: robustness to a synthetic bias field (Table 6, Figs. 4 and 8).
- :mod:`~dnorm.evaluation.discriminator`: discriminator confusion on train and test patches.
- :mod:`~dnorm.evaluation.paper` and :mod:`~dnorm.evaluation.tables`: Tables 2–7 beside the
  paper's values; :mod:`~dnorm.evaluation.claims`: the paper's claims, held or not.
"""
