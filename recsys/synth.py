"""Synthetic catalog and transactions shaped like MovieLens, with structure a real model can learn.

Why synthetic data: ML-20M and larger may not be redistributed, yet the pipeline must be measured at
that scale. The generator plants what makes recommendation possible and what makes it hard:

- items fall into latent clusters (written to the catalog as categories); each user prefers one or two
  clusters, draws most items from them and rates them higher, so co-occurrence models beat popularity;
- item popularity is Zipf-like and user activity lognormal (every user has at least `min_per_user`
  interactions when the total allows), so a few items and users dominate, as in MovieLens;
- each user's items are distinct (sampling without replacement from the user's own distribution),
  timestamps rise strictly within each history, ratings are half stars from 0.5 to 5.0.

Users are generated and written in blocks of about `block_rows` interactions with numpy only, so
memory stays bounded whatever the number of interactions; the output depends only on the config.
"""

from __future__ import annotations

import csv
import itertools
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tqdm import tqdm

from recsys.csv_contract import CATEGORIES, CATEGORY_SEPARATOR, ITEM_ID, RATING, TIMESTAMP, TITLE, USER_ID

# The shape of MovieLens 20M: the defaults of `recsys synth`.
ML20M_USERS = 138_493
ML20M_ITEMS = 26_744
ML20M_INTERACTIONS = 20_000_263

T_START = 788_918_400  # 1995-01-01T00:00:00Z
T_END = 1_451_606_399  # 2015-12-31T23:59:59Z
CLUSTER_NAMES = (
    "Drama",
    "Comedy",
    "Thriller",
    "Action",
    "Romance",
    "Adventure",
    "Crime",
    "Sci-Fi",
    "Horror",
    "Fantasy",
    "Children",
    "Animation",
    "Mystery",
    "Documentary",
    "War",
    "Musical",
    "Western",
    "Film-Noir",
)
RATING_LABELS = pa.array([f"{v / 2:.1f}" for v in range(1, 11)])  # "0.5" … "5.0"
CATALOG_FILE = "catalog.csv"
TRANSACTIONS_FILE = "transactions.csv"


class SynthError(ValueError):
    """The request cannot be met (for example more interactions than distinct user–item pairs)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything the output depends on; the same config always writes the same bytes."""

    users: int = ML20M_USERS
    items: int = ML20M_ITEMS
    interactions: int = ML20M_INTERACTIONS
    seed: int = 0
    clusters: int = len(CLUSTER_NAMES)
    in_cluster_share: float = 0.8  # share of a user's draws from the preferred clusters
    second_cluster_prob: float = 0.5  # share of users with two preferred clusters
    popularity_exponent: float = 0.9  # Zipf exponent of item popularity
    activity_sigma: float = 1.3  # lognormal sigma of user activity above the minimum
    min_per_user: int = 20  # MovieLens keeps users with at least 20 ratings
    block_rows: int = 1_000_000  # interactions generated and written per block

    def check(self) -> None:
        """Raise SynthError with a plain explanation when the request is impossible."""
        for name in ("users", "items", "interactions", "clusters", "min_per_user", "block_rows"):
            if getattr(self, name) < 1:
                raise SynthError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.seed < 0:
            raise SynthError(f"seed must be zero or positive, got {self.seed}")
        pairs = self.users * self.items
        if self.interactions > pairs:
            raise SynthError(
                f"{self.interactions:,} interactions cannot be distinct user–item pairs: "
                f"{self.users:,} users × {self.items:,} items allow at most {pairs:,}"
            )
        if self.interactions < self.users:
            raise SynthError(
                f"{self.interactions:,} interactions cannot give each of the {self.users:,} users at least "
                "one; ask for at least as many interactions as users"
            )
        if not (0.0 <= self.in_cluster_share <= 1.0 and 0.0 <= self.second_cluster_prob <= 1.0):
            raise SynthError("in_cluster_share and second_cluster_prob must lie between 0 and 1")


@dataclass(frozen=True)
class SynthResult:
    """What was written, for the CLI's summary and the benchmark."""

    catalog_path: Path
    transactions_path: Path
    users: int
    items: int
    interactions: int
    bytes_written: int


@dataclass(frozen=True)
class _World:
    """Item-side model, shared by all users (arrays of length n_items unless noted)."""

    cluster: np.ndarray  # primary cluster per item
    popularity: np.ndarray  # global draw probability per item (sums to 1)
    in_cluster: np.ndarray  # draw probability within the item's own cluster
    global_cdf: np.ndarray  # cumulative popularity, for inverse-CDF draws
    by_cluster: np.ndarray  # item indices ordered by cluster
    cluster_ends: np.ndarray  # cumulative in-cluster probability of `by_cluster`, offset by cluster
    quality: np.ndarray  # rating offset per item


@dataclass(frozen=True)
class _Users:
    """User-side model (arrays of length n_users)."""

    count: np.ndarray  # interactions per user
    first: np.ndarray  # preferred cluster
    second: np.ndarray  # second preferred cluster, or -1
    bias: np.ndarray  # rating offset
    start: np.ndarray  # epoch seconds of the first interaction
    span: np.ndarray  # seconds between the first interaction and the end of the history (> count)


def _rng(config: SynthConfig, *stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, *stream])


def _make_world(config: SynthConfig, rng: np.random.Generator) -> _World:
    """Clusters, Zipf popularity (ranks shuffled so no cluster owns the hits) and per-cluster CDFs."""
    n, g = config.items, min(config.clusters, config.items)
    # Every cluster gets at least one item; the rest follow uneven cluster sizes, as genres do.
    cluster = np.concatenate([np.arange(g), rng.choice(g, size=n - g, p=rng.dirichlet(np.full(g, 2.0)))])
    cluster = rng.permutation(cluster)
    weight = 1.0 / (rng.permutation(n) + 1.0) ** config.popularity_exponent
    popularity = weight / weight.sum()
    in_cluster = weight / np.bincount(cluster, weights=weight, minlength=g)[cluster]
    by_cluster = np.argsort(cluster, kind="stable")
    sorted_cluster = cluster[by_cluster]
    ends = np.cumsum(in_cluster[by_cluster])
    starts = np.searchsorted(sorted_cluster, np.arange(g))
    before = np.concatenate([[0.0], ends[starts[1:] - 1]])  # cumulative sum before each cluster
    ends = np.minimum(ends - before[sorted_cluster], 1.0) + sorted_cluster
    ends[np.append(starts[1:] - 1, n - 1)] = np.arange(g) + 1.0  # exact cluster boundaries
    log_pop = np.log(popularity)
    quality = rng.normal(0.0, 0.45, n) + 0.15 * (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    return _World(cluster, popularity, in_cluster, np.cumsum(popularity), by_cluster, ends, quality)


def _allocate(total: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers proportional to `weights`, each at most its cap, summing exactly to `total`."""
    share = np.zeros(len(weights))
    free = np.ones(len(weights), dtype=bool)
    while True:  # water-filling: users over their cap get the cap, the rest share what is left
        left = total - caps[~free].sum()
        share[free] = left * weights[free] / weights[free].sum() if free.any() else 0.0
        over = free & (share > caps)
        if not over.any():
            break
        share[over] = caps[over]
        free &= ~over
    base: np.ndarray = np.minimum(np.floor(share).astype(np.int64), caps)
    short = int(total - base.sum())
    if short > 0:  # hand the remainder to the largest fractional parts among users with room
        frac = np.where(base < caps, share - base, -1.0)
        base[np.argsort(-frac, kind="stable")[:short]] += 1
    return base


def _make_users(config: SynthConfig, world: _World, rng: np.random.Generator) -> _Users:
    """Activity, tastes and time span per user; big clusters attract more users, as big genres do."""
    n, k, m = config.users, config.interactions, config.items
    floor = min(config.min_per_user, k // n, m)
    activity = rng.lognormal(0.0, config.activity_sigma, n)
    count = floor + _allocate(k - floor * n, activity, np.full(n, m - floor, dtype=np.int64))
    g = int(world.cluster.max()) + 1
    mass = np.bincount(world.cluster, weights=world.popularity, minlength=g)
    first = rng.choice(g, size=n, p=mass / mass.sum())
    second = np.full(n, -1, dtype=np.int64)
    if g > 1:
        two = rng.random(n) < config.second_cluster_prob
        other = (first + 1 + rng.integers(0, g - 1, n)) % g  # any cluster but the first
        second = np.where(two, other, -1)
    day = 86_400.0
    span = np.exp(rng.normal(math.log(120 * day), 1.8, n))
    span = np.clip(span, count + 3_600, T_END - T_START).astype(np.int64)
    start = T_START + (rng.random(n) * (T_END - T_START - span)).astype(np.int64)
    return _Users(count, first, second, rng.normal(0.0, 0.35, n), start, span)


def _draw(
    world: _World, users: _Users, who: np.ndarray, share: float, rng: np.random.Generator
) -> np.ndarray:
    """One item per entry of `who` (user indices), with replacement, from each user's own mixture.

    A draw comes from one of the user's clusters with probability `share`, else from global popularity;
    both are inverse-CDF look-ups, so a block of millions of draws is two binary searches.
    """
    u = rng.random(len(who))  # one uniform serves whichever branch the draw takes
    from_cluster = rng.random(len(who)) < share
    second = users.second[who]
    cluster = np.where((second >= 0) & (rng.random(len(who)) < 0.5), second, users.first[who])
    last = len(world.by_cluster) - 1
    in_cluster = world.by_cluster[np.minimum(np.searchsorted(world.cluster_ends, cluster + u, "right"), last)]
    anywhere = np.minimum(np.searchsorted(world.global_cdf, u * world.global_cdf[-1], "right"), last)
    picked: np.ndarray = np.where(from_cluster, in_cluster, anywhere)
    return picked


def _sample_light(
    world: _World, users: _Users, who: np.ndarray, share: float, rng: np.random.Generator, rounds: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct items for light users: draw with replacement, keep the first distinct draws, repeat.

    Keeping the first `count` distinct items in draw order is exactly sampling without replacement.
    Users still short after `rounds` rounds (their clusters are exhausted) are returned for `_sample_exact`.
    """
    m = len(world.cluster)
    short = users.count[who].copy()
    kept: list[np.ndarray] = []
    for _ in range(rounds):
        active = np.flatnonzero(short > 0)
        if not len(active):
            break
        local = np.repeat(active, 2 * short[active] + 2)
        keys = local * m + _draw(world, users, who[local], share, rng)
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]  # first occurrence of each pair, still in draw order
        if kept:  # drop pairs taken in earlier rounds (binary search: np.isin hashes, far slower here)
            taken = np.sort(np.concatenate(kept))
            at = np.minimum(np.searchsorted(taken, keys), len(taken) - 1)
            keys = keys[taken[at] != keys]
        owner = keys // m
        rank = np.arange(len(keys)) - np.searchsorted(owner, owner, "left")
        keys = keys[rank < short[owner]]
        kept.append(keys)
        short -= np.bincount(keys // m, minlength=len(who))
    keys = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    unfinished = short > 0
    keys = keys[~unfinished[keys // m]]
    return who[keys // m], keys % m, who[unfinished]


def _sample_exact(
    world: _World, users: _Users, who: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct items for heavy users: Gumbel top-k over each user's full item distribution.

    Costs O(n_items) per user, so it is kept for users who take a sizeable part of the catalog.
    """
    m = len(world.cluster)
    batch = max(1, 2_000_000 // m)
    out_users, out_items = [], []
    for lo in range(0, len(who), batch):
        rows = who[lo : lo + batch]
        need = users.count[rows]
        first, second = users.first[rows, None], users.second[rows, None]
        member = (world.cluster == first) + (world.cluster == second) * 1.0
        member *= np.where(second >= 0, 0.5, 1.0)
        weight = (1.0 - share) * world.popularity + share * world.in_cluster * member
        keys = np.log(np.maximum(weight, 1e-300)) + rng.gumbel(size=weight.shape)
        top_n = int(need.max())
        top = np.argpartition(-keys, top_n - 1, axis=1)[:, :top_n] if top_n < m else np.argsort(-keys, axis=1)
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1), 1)
        out_items.append(top[np.arange(top.shape[1]) < need[:, None]])
        out_users.append(np.repeat(rows, need))
    if not out_users:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(out_users), np.concatenate(out_items)


def _block(
    config: SynthConfig, world: _World, users: _Users, lo: int, hi: int, rng: np.random.Generator
) -> pa.Table:
    """All interactions of users lo..hi-1, sorted by user and time, as a table ready to write."""
    m, share = config.items, config.in_cluster_share
    who = np.arange(lo, hi)
    heavy = users.count[who] > max(1, m // 16)
    light_users, light_items, unfinished = _sample_light(world, users, who[~heavy], share, rng)
    exact_users, exact_items = _sample_exact(
        world, users, np.concatenate([who[heavy], unfinished]), share, rng
    )
    user = np.concatenate([light_users, exact_users])
    item = np.concatenate([light_items, exact_items])
    when = rng.random(len(user))  # random order within each history; sorted, it spaces the timestamps
    order = np.lexsort((when, user))
    user, item, when = user[order], item[order], when[order]
    need = users.count[who]
    rank = np.arange(len(user)) - np.repeat(np.cumsum(need) - need, need)
    timestamp = users.start[user] + (when * (users.span[user] - need[user - lo])).astype(np.int64) + rank
    liked = (world.cluster[item] == users.first[user]) | (world.cluster[item] == users.second[user])
    score = 3.05 + users.bias[user] + world.quality[item] + 0.6 * liked + rng.normal(0.0, 0.75, len(user))
    stars = np.clip(np.rint(score * 2.0), 1, 10).astype(np.int64) - 1
    return pa.table(
        {
            USER_ID: pa.array(user + 1),
            ITEM_ID: pa.array(item + 1),
            TIMESTAMP: pa.array(timestamp),
            RATING: pc.take(RATING_LABELS, pa.array(stars)),
        }
    )


def _blocks(count: np.ndarray, block_rows: int) -> Iterator[tuple[int, int]]:
    """Consecutive user ranges holding about `block_rows` interactions each."""
    block = (np.cumsum(count) - count) // block_rows
    edges = np.concatenate([[0], np.flatnonzero(np.diff(block)) + 1, [len(count)]])
    for lo, hi in itertools.pairwise(edges):
        yield int(lo), int(hi)


_ADJECTIVE_WORDS = (
    "Silent Broken Golden Last Hidden Wild Dark Lost Electric Crimson Quiet Burning Frozen Secret Little "
    "Endless Midnight Distant Savage Gentle Restless Hollow Bright Fallen Iron"
)
_NOUN_WORDS = (
    "River Empire Garden Promise Kingdom Summer Stranger Highway Mirror Harbor Letter Storm Island Circus "
    "Detective Orchard Frontier Symphony Machine Winter Shadow Carnival Voyage Lighthouse Alibi"
)
_ADJECTIVES = np.array(_ADJECTIVE_WORDS.split(), dtype=object)
_NOUNS = np.array(_NOUN_WORDS.split(), dtype=object)


def _titles(n: int, rng: np.random.Generator) -> np.ndarray:
    """MovieLens-style titles; about 40% hold a comma and some hold quotes, so writers must quote."""
    adj, noun = _ADJECTIVES[rng.integers(0, len(_ADJECTIVES), n)], _NOUNS[rng.integers(0, len(_NOUNS), n)]
    noun2, noun3 = _NOUNS[rng.integers(0, len(_NOUNS), n)], _NOUNS[rng.integers(0, len(_NOUNS), n)]
    forms = [
        adj + " " + noun,
        adj + " " + noun + ", The",  # "American President, The (1995)"
        noun + " of the " + noun2,
        noun + ", " + noun2 + " and the " + noun3,
        adj + " " + noun + ", A",
        '"' + adj + " " + noun + '" ' + noun2,  # quoted names occur in MovieLens titles too
    ]
    form = rng.choice(len(forms), size=n, p=[0.4, 0.25, 0.15, 0.1, 0.05, 0.05])
    year = np.clip(2015 - rng.exponential(15.0, n).astype(np.int64), 1915, 2015)
    title = np.choose(form, forms)
    return np.asarray(title + " (" + year.astype(str).astype(object) + ")", dtype=object)


def _write_catalog(path: Path, world: _World, rng: np.random.Generator) -> None:
    """item_id,title,categories: the item's cluster first, sometimes a second category after it."""
    n = len(world.cluster)
    g = int(world.cluster.max()) + 1
    names = np.array([CLUSTER_NAMES[c] if c < len(CLUSTER_NAMES) else f"Genre {c + 1}" for c in range(g)])
    names = names.astype(object)
    categories = names[world.cluster]
    if g > 1:
        other = (world.cluster + 1 + rng.integers(0, g - 1, n)) % g
        extra = rng.random(n) < 0.35
        categories = np.where(extra, categories + CATEGORY_SEPARATOR + names[other], categories)
    titles = _titles(n, rng)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([ITEM_ID, TITLE, CATEGORIES])
        writer.writerows(zip(range(1, n + 1), titles, categories, strict=True))


def synthesize(
    out_dir: str | Path, config: SynthConfig | None = None, *, progress: bool = False
) -> SynthResult:
    """Write `catalog.csv` and `transactions.csv` into `out_dir` (created if missing)."""
    config = config or SynthConfig()
    config.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _make_world(config, _rng(config, 0))
    users = _make_users(config, world, _rng(config, 1))
    catalog_path, transactions_path = out / CATALOG_FILE, out / TRANSACTIONS_FILE
    _write_catalog(catalog_path, world, _rng(config, 2))
    schema = pa.schema(
        [(USER_ID, pa.int64()), (ITEM_ID, pa.int64()), (TIMESTAMP, pa.int64()), (RATING, pa.string())]
    )
    options = pa_csv.WriteOptions(quoting_style="none", quoting_header="none")
    written = 0
    with (
        pa_csv.CSVWriter(str(transactions_path), schema, write_options=options) as writer,
        tqdm(
            total=config.interactions,
            unit=" rows",
            unit_scale=True,
            desc="transactions",
            file=sys.stderr,
            disable=not progress,
        ) as bar,
    ):
        for index, (lo, hi) in enumerate(_blocks(users.count, config.block_rows)):
            table = _block(config, world, users, lo, hi, _rng(config, 3, index))
            writer.write_table(table)
            written += table.num_rows
            bar.update(table.num_rows)
    if written != config.interactions:  # a broken invariant, not a user error
        raise RuntimeError(f"wrote {written} interactions, expected {config.interactions}")
    return SynthResult(
        catalog_path=catalog_path,
        transactions_path=transactions_path,
        users=config.users,
        items=config.items,
        interactions=written,
        bytes_written=catalog_path.stat().st_size + transactions_path.stat().st_size,
    )
