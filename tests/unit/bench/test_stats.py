"""The suite's statistics: percentiles of a sample, and Palisade against the baseline."""

from __future__ import annotations

import math

import pytest

from bench.stats import Summary, added, percentile, percentiles, ratio, summarise

ONE_TO_HUNDRED = [float(n) for n in range(1, 101)]


class TestPercentiles:
    def test_of_one_to_a_hundred_interpolate_between_samples(self) -> None:
        assert percentiles(ONE_TO_HUNDRED) == pytest.approx((50.5, 95.05, 99.01))

    def test_do_not_depend_on_the_order_of_the_samples(self) -> None:
        assert percentiles(list(reversed(ONE_TO_HUNDRED))) == percentiles(ONE_TO_HUNDRED)

    def test_stay_within_the_samples_when_there_are_few(self) -> None:
        p50, p95, p99 = percentiles([10.0, 20.0, 30.0])
        assert p50 == 20.0
        assert 20.0 < p95 < p99 <= 30.0

    def test_of_one_sample_are_that_sample(self) -> None:
        assert percentiles([7.5]) == (7.5, 7.5, 7.5)

    def test_of_no_sample_are_not_a_number(self) -> None:
        assert all(math.isnan(p) for p in percentiles([]))

    def test_a_single_rank_agrees_with_the_triple(self) -> None:
        assert percentile(ONE_TO_HUNDRED, 95) == percentiles(ONE_TO_HUNDRED)[1]
        assert percentile(ONE_TO_HUNDRED, 90) == pytest.approx(90.1)

    @pytest.mark.parametrize("rank", [0, 100])
    def test_a_rank_outside_one_to_ninety_nine_is_refused(self, rank: int) -> None:
        with pytest.raises(ValueError, match="rank"):
            percentile(ONE_TO_HUNDRED, rank)


class TestSummary:
    def test_counts_successes_and_reports_their_rate(self) -> None:
        summary = summarise(ONE_TO_HUNDRED, errors=3, elapsed_s=4.0)
        assert (summary.count, summary.errors) == (100, 3)
        assert summary.rate == 25.0
        assert summary.p50 == pytest.approx(50.5)

    def test_rate_of_a_phase_that_took_no_time_is_not_a_number(self) -> None:
        assert math.isnan(summarise([], errors=0, elapsed_s=0.0).rate)


def summary(p50: float, p99: float) -> Summary:
    return Summary(count=10, errors=0, elapsed_s=1.0, p50=p50, p95=p99, p99=p99)


class TestAdded:
    def test_is_the_difference_and_the_ratio_of_the_same_percentile(self) -> None:
        result = added(palisade=summary(25.0, 80.0), direct=summary(5.0, 20.0))
        assert (result.p50_ms, result.p99_ms) == (20.0, 60.0)
        assert (result.p50_ratio, result.p99_ratio) == (5.0, 4.0)

    def test_can_be_negative_when_palisade_was_faster(self) -> None:
        result = added(palisade=summary(4.0, 10.0), direct=summary(5.0, 20.0))
        assert result.p50_ms == -1.0
        assert result.p50_ratio == 0.8

    def test_ratio_against_nothing_is_not_a_number(self) -> None:
        assert math.isnan(ratio(5.0, 0.0))
        assert math.isnan(added(summary(5.0, 5.0), summary(math.nan, math.nan)).p50_ratio)
