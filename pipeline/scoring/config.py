"""Scoring cut-offs, weights, SLAs and KPI thresholds: one frozen config, defaults in code and config/scoring.yml.

Every section is validated on construction, so a bad YAML file fails when it is loaded, not halfway
through a daily run. Unknown keys are errors: a misspelt key would otherwise silently keep its default.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from pipeline.schemas import RATER_DIMENSIONS

SEVERITIES = ("low", "medium", "high", "critical")
ALERT_SEVERITIES = ("info", "warning", "critical")


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    """Read-only copy, so a frozen config cannot be changed through one of its mappings."""
    return MappingProxyType({str(k): float(v) for k, v in mapping.items()})


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _non_negative_weights(weights: Mapping[str, float], what: str) -> None:
    _require(all(w >= 0 for w in weights.values()) and sum(weights.values()) > 0,
             f"{what} must be non-negative with a positive sum, got {dict(weights)}")


@dataclass(frozen=True)
class LifecycleConfig:
    """Day thresholds of the lifecycle stages (docs/metrics-lifecycle.md) and churn-risk bands over P(alive)."""

    new_days: int = 30  # first purchase at most this many days ago
    active_days: int = 90  # repeat buyers whose last purchase is this recent are active
    cooling_days: int = 180
    lost_days: int = 365  # no purchase for longer than this: lost; a longer gap before a purchase: a return
    reactivated_days: int = 90  # a return this recent stages the customer as reactivated
    churn_band_cutoffs: tuple[float, ...] = (0.3, 0.7)  # P(alive) < 0.3 high, < 0.7 medium, else low
    churn_band_labels: tuple[str, ...] = ("high", "medium", "low")

    def __post_init__(self) -> None:
        object.__setattr__(self, "churn_band_cutoffs", tuple(float(c) for c in self.churn_band_cutoffs))
        object.__setattr__(self, "churn_band_labels", tuple(str(b) for b in self.churn_band_labels))
        _require(0 < self.new_days <= self.active_days <= self.cooling_days <= self.lost_days,
                 "lifecycle thresholds must satisfy 0 < new_days <= active_days <= cooling_days <= lost_days")
        # A return is recent only while the customer would otherwise count as active.
        _require(0 < self.reactivated_days <= self.active_days, "reactivated_days must lie in (0, active_days]")
        cuts = self.churn_band_cutoffs
        _require(all(0 < c < 1 for c in cuts) and list(cuts) == sorted(set(cuts)),
                 f"churn_band_cutoffs must be strictly increasing in (0, 1), got {cuts}")
        _require(len(self.churn_band_labels) == len(cuts) + 1,
                 "churn_band_labels needs one label more than churn_band_cutoffs")


@dataclass(frozen=True)
class ClvConfig:
    """BG/NBD + Gamma-Gamma scoring (docs/metrics-clv.md) and their minimum-data guards."""

    period_days: float = 7.0  # model time unit: weeks, as in the published CDNOW fits
    horizon_periods: float = 52.0  # expected purchases and CLV over the next 52 weeks
    step_periods: float = 4.0  # CLV discounting step; horizon must be a multiple of it
    annual_discount_rate: float = 0.10
    margin: float = 1.0  # share of revenue counted as value; 1 = CLV in revenue terms
    bgnbd_min_customers: int = 30
    gamma_gamma_min_repeat_buyers: int = 30
    bgnbd_penalizer: float = 0.0
    # model_quality: refit on the history up to as-of minus this many periods, check on the rest
    holdout_periods: float = 13.0

    def __post_init__(self) -> None:
        _require(self.period_days > 0 and self.horizon_periods > 0 and self.step_periods > 0,
                 "period_days, horizon_periods and step_periods must be positive")
        _require(self.holdout_periods > 0, "holdout_periods must be positive")
        steps = self.horizon_periods / self.step_periods
        _require(steps >= 1 and abs(steps - round(steps)) < 1e-9, "horizon_periods must be a multiple of step_periods")
        _require(self.annual_discount_rate > -1, "annual_discount_rate must exceed -1")
        _require(self.bgnbd_min_customers >= 1 and self.gamma_gamma_min_repeat_buyers >= 1,
                 "minimum customer counts must be at least 1")

    @property
    def discount_rate_per_period(self) -> float:
        return (1 + self.annual_discount_rate) ** (self.period_days / 365.25) - 1


# Zeithaml, Parasuraman & Berry (1990), Delivering Quality Service: the average of the 100 points
# customers allocated across the five dimensions (reliability 32, responsiveness 22, assurance 19,
# empathy 16, tangibles 11).
DEFAULT_RATER_WEIGHTS = {"reliability": 0.32, "responsiveness": 0.22, "assurance": 0.19, "empathy": 0.16, "tangibles": 0.11}


@dataclass(frozen=True)
class ServiceConfig:
    """RATER/SERVQUAL, NPS and CSAT (docs/metrics-service.md)."""

    rater_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_RATER_WEIGHTS)
    promoter_min: float = 9.0  # NPS promoters: recommend >= 9 on 0-10
    detractor_max: float = 6.0  # NPS detractors: recommend <= 6
    csat_top_box_min: float = 6.0  # CSAT: satisfaction in the top two boxes (6, 7) of the 1-7 scale
    alpha_min_responses: int = 10  # Cronbach's alpha needs this many complete responses

    def __post_init__(self) -> None:
        object.__setattr__(self, "rater_weights", _frozen(self.rater_weights))
        _require(set(self.rater_weights) == set(RATER_DIMENSIONS),
                 f"rater_weights needs exactly the dimensions {RATER_DIMENSIONS}")
        _non_negative_weights(self.rater_weights, "rater_weights")
        _require(0 <= self.detractor_max < self.promoter_min <= 10, "need 0 <= detractor_max < promoter_min <= 10")
        _require(1 <= self.csat_top_box_min <= 7, "csat_top_box_min must lie on the 1-7 scale")
        _require(self.alpha_min_responses >= 2, "alpha_min_responses must be at least 2")


DEFAULT_SLA_HOURS = {"critical": 24.0, "high": 72.0, "medium": 120.0, "low": 240.0}


@dataclass(frozen=True)
class ComplaintConfig:
    """Resolution SLA per severity (docs/metrics-complaints.md)."""

    sla_hours: Mapping[str, float] = field(default_factory=lambda: DEFAULT_SLA_HOURS)
    default_sla_hours: float = 120.0  # tickets without (or with an unknown) severity

    def __post_init__(self) -> None:
        object.__setattr__(self, "sla_hours", _frozen(self.sla_hours))
        _require(set(self.sla_hours) <= set(SEVERITIES), f"sla_hours keys must be among {SEVERITIES}")
        _require(all(h > 0 for h in self.sla_hours.values()) and self.default_sla_hours > 0, "SLA hours must be positive")


DEFAULT_BEHAVIOURAL_WEIGHTS = {"recency": 1 / 3, "frequency": 1 / 3, "tenure": 1 / 3}
DEFAULT_ATTITUDINAL_WEIGHTS = {"recommend": 0.5, "satisfaction": 0.5}


@dataclass(frozen=True)
class LoyaltyConfig:
    """Retention period and loyalty-index weights (docs/metrics-loyalty.md)."""

    retention_period_days: int = 90
    behavioural_weight: float = 0.5
    attitudinal_weight: float = 0.5
    behavioural_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_BEHAVIOURAL_WEIGHTS)
    attitudinal_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_ATTITUDINAL_WEIGHTS)

    def __post_init__(self) -> None:
        object.__setattr__(self, "behavioural_weights", _frozen(self.behavioural_weights))
        object.__setattr__(self, "attitudinal_weights", _frozen(self.attitudinal_weights))
        _require(self.retention_period_days > 0, "retention_period_days must be positive")
        _require(set(self.behavioural_weights) == set(DEFAULT_BEHAVIOURAL_WEIGHTS),
                 f"behavioural_weights needs exactly {tuple(DEFAULT_BEHAVIOURAL_WEIGHTS)}")
        _require(set(self.attitudinal_weights) == set(DEFAULT_ATTITUDINAL_WEIGHTS),
                 f"attitudinal_weights needs exactly {tuple(DEFAULT_ATTITUDINAL_WEIGHTS)}")
        _non_negative_weights(self.behavioural_weights, "behavioural_weights")
        _non_negative_weights(self.attitudinal_weights, "attitudinal_weights")
        _non_negative_weights({"b": self.behavioural_weight, "a": self.attitudinal_weight}, "loyalty weights")
        _require(self.behavioural_weight > 0, "behavioural_weight must be positive: it is the fallback without surveys")


THRESHOLD_KINDS = ("fixed", "dynamic")
DYNAMIC_SIDES = ("both", "below", "above")


@dataclass(frozen=True)
class KpiThreshold:
    """Alert when the company KPI `metric` leaves its allowed range (docs/metrics-kpi.md).

    fixed: below `min` or above `max`. dynamic: below/above the mean of the metric over the
    `window_days` before the as-of date -/+ `k` standard deviations (`side` says which departures
    alert), once at least `min_history_days` of those days have a value.
    """

    metric: str
    min: float | None = None
    max: float | None = None
    severity: str = "warning"
    kind: str = "fixed"
    window_days: int | None = None  # dynamic only; default 28
    k: float | None = None  # dynamic only; default 3
    min_history_days: int | None = None  # dynamic only; default 14
    side: str | None = None  # dynamic only; default both

    def __post_init__(self) -> None:
        _require(self.kind in THRESHOLD_KINDS, f"threshold on {self.metric}: kind must be one of {THRESHOLD_KINDS}")
        _require(self.severity in ALERT_SEVERITIES, f"severity must be one of {ALERT_SEVERITIES}, got {self.severity!r}")
        dynamic = {"window_days": self.window_days, "k": self.k, "min_history_days": self.min_history_days,
                   "side": self.side}
        if self.kind == "fixed":
            _require(self.min is not None or self.max is not None, f"threshold on {self.metric} needs min or max")
            _require(self.min is None or self.max is None or self.min <= self.max, f"threshold on {self.metric}: min > max")
            given = sorted(name for name, value in dynamic.items() if value is not None)
            _require(not given, f"fixed threshold on {self.metric}: {given} only apply to kind: dynamic")
            return
        _require(self.min is None and self.max is None,
                 f"dynamic threshold on {self.metric}: its bounds come from the history; use side, not min/max")
        object.__setattr__(self, "window_days", int(28 if self.window_days is None else self.window_days))
        object.__setattr__(self, "k", float(3.0 if self.k is None else self.k))
        object.__setattr__(self, "min_history_days", int(14 if self.min_history_days is None else self.min_history_days))
        object.__setattr__(self, "side", self.side or "both")
        _require(self.window_days >= 2, f"dynamic threshold on {self.metric}: window_days must be at least 2")
        _require(self.k > 0, f"dynamic threshold on {self.metric}: k must be positive")
        # A standard deviation needs two values.
        _require(2 <= self.min_history_days <= self.window_days,
                 f"dynamic threshold on {self.metric}: min_history_days must lie in [2, window_days]")
        _require(self.side in DYNAMIC_SIDES, f"dynamic threshold on {self.metric}: side must be one of {DYNAMIC_SIDES}")


DEFAULT_KPI_THRESHOLDS = (
    KpiThreshold("retention_rate", min=0.20, severity="warning"),
    KpiThreshold("retention_rate", kind="dynamic", side="below", severity="warning"),
    KpiThreshold("repeat_purchase_rate", min=0.20, severity="warning"),
    KpiThreshold("repeat_purchase_rate", kind="dynamic", side="below", severity="info"),
    KpiThreshold("nps", min=0.0, severity="warning"),
    KpiThreshold("nps", kind="dynamic", side="below", severity="warning"),
    KpiThreshold("csat", min=0.70, severity="warning"),
    KpiThreshold("rater_gap_index", min=-1.0, severity="warning"),
    KpiThreshold("sla_breach_share", max=0.10, severity="critical"),
    KpiThreshold("sla_breach_share", kind="dynamic", side="above", severity="warning"),
    KpiThreshold("complaints_per_1000_orders", max=20.0, severity="warning"),
    KpiThreshold("timely_response_share", min=0.95, severity="critical"),
    KpiThreshold("gross_margin_rate", min=0.20, severity="warning"),
    KpiThreshold("revenue_share_vip", kind="dynamic", side="both", severity="info"),
)


@dataclass(frozen=True)
class ScoringConfig:
    pyramid_window_days: int = 365
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    clv: ClvConfig = field(default_factory=ClvConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    complaints: ComplaintConfig = field(default_factory=ComplaintConfig)
    loyalty: LoyaltyConfig = field(default_factory=LoyaltyConfig)
    kpi_thresholds: tuple[KpiThreshold, ...] = DEFAULT_KPI_THRESHOLDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "kpi_thresholds", tuple(self.kpi_thresholds))
        _require(self.pyramid_window_days > 0, "pyramid_window_days must be positive")
        # kpi_alert and kpi_threshold_check are keyed by (metric, kind): one threshold of each kind per metric.
        keys = [(t.metric, t.kind) for t in self.kpi_thresholds]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        _require(not twice, f"kpi_thresholds: more than one threshold of the same kind on {twice}")


_SECTIONS = {"lifecycle": LifecycleConfig, "clv": ClvConfig, "service": ServiceConfig,
             "complaints": ComplaintConfig, "loyalty": LoyaltyConfig}


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    _require(not unknown, f"unknown keys in {where}: {sorted(unknown)}")
    return cls(**values)


def scoring_config_from_dict(data: Mapping[str, Any] | None) -> ScoringConfig:
    """ScoringConfig from parsed YAML; missing keys keep their defaults."""
    data = dict(data or {})
    kwargs: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        if name in data:
            kwargs[name] = _build(cls, data.pop(name) or {}, name)
    if "kpi_thresholds" in data:
        kwargs["kpi_thresholds"] = tuple(_build(KpiThreshold, t, "kpi_thresholds") for t in data.pop("kpi_thresholds") or [])
    return _build(ScoringConfig, {**data, **kwargs}, "the scoring config")


def load_scoring_config(path: str | Path) -> ScoringConfig:
    return scoring_config_from_dict(yaml.safe_load(Path(path).read_text()))
