"""The wiring between the domain (:mod:`zoning`) and files (:mod:`layers`); no computation of its own.

``config`` loads and validates model, rules and project; ``inputs`` reads layers; ``classifying``, ``checking`` and
``compensating`` run the domain and write its outputs; ``project`` runs the whole job; ``record`` keeps the run's
record. Every run is planned in parts (``plan``; ``sources`` says where a part finds its features), each part goes
through one step (``steps``, ``parcels``) and the results through one reduce (``reduce``), whatever runs the parts:
``executors`` (this process, or Dask through ``cluster`` for ``--cluster``).
"""
from .checking import check, run_check
from .reduce import CheckResult
from .classifying import classify, run_classify
from .comparing import run_compare
from .config import CheckJob, ClassifyOptions, ReadOptions, load_model, load_project, load_rules, sample_project
from .project import run_map, run_project
from .record import library_versions

__all__ = ["CheckJob", "CheckResult", "ClassifyOptions", "ReadOptions", "check", "classify", "library_versions", "load_model", "load_project",
           "load_rules", "run_check", "run_classify", "run_compare", "run_map", "run_project", "sample_project"]
