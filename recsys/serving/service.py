"""The answers: recommendations for a user, similar items, health. Reads through `ServingStore`.

For a user (model version V = the live pointer's):

1. The user's newest recent events (up to `recent_events_limit`): their items are never recommended.
2. Fold-in (source `realtime`) when the live model has item vectors, the user has recent events with
   vectors, and either some event is newer than the model (`model_created_ms`) or the model has no list
   for the user: the blend of `recsys.serving.ranking`.
3. Else the precomputed list of V minus consumed items (source `personalized`).
4. Else V's popularity list minus consumed items (source `popular`): users the model has never seen.

Before any publish there is no popularity either: the answer is up to k catalog items from one bounded
read of the items table (source `catalog`, score 0; a full scan to rank them would cost a read of the
whole catalog per request), or 503 when the catalog is empty too.
"""

from __future__ import annotations

from typing import Any

from recsys.serving.ranking import Scored, best, blend, rounded
from recsys.serving.settings import ServingSettings
from recsys.serving.store import RecentEvent, ServingStore
from recsys.serving.table import LivePointer, ScoredList
from recsys.serving.validation import NotFoundError, UnavailableError

PERSONALIZED = "personalized"
REALTIME = "realtime"
POPULAR = "popular"
CATALOG = "catalog"
SOURCES = (PERSONALIZED, REALTIME, POPULAR, CATALOG)
NO_MODEL_RETRY_S = 60


class Recommender:
    def __init__(self, store: ServingStore, settings: ServingSettings) -> None:
        self.store = store
        self.settings = settings

    def recommendations(self, user_id: str, k: int) -> dict[str, Any]:
        live = self.store.live()
        if live is None:
            return self._before_any_model(user_id, k)
        events = self.store.recent_events(user_id)
        seen = {e.item_id for e in events}
        precomputed = self.store.user_list(live.version, user_id)
        pairs = self._realtime(live, events, precomputed, seen, k)
        if pairs is not None:
            source = REALTIME
        elif precomputed is not None:
            pairs, source = best(precomputed, k, seen), PERSONALIZED
        else:
            pairs, source = best(self.store.popular_list(live.version), k, seen), POPULAR
        return {
            "user_id": user_id,
            "model_version": live.version,
            "source": source,
            "items": self._items(pairs),
        }

    def _realtime(
        self,
        live: LivePointer,
        events: list[RecentEvent],
        precomputed: ScoredList | None,
        seen: set[str],
        k: int,
    ) -> list[Scored] | None:
        if not events or not live.item_vectors_uri:
            return None
        if precomputed is not None and all(e.at_ms <= live.model_created_ms for e in events):
            return None  # the model has seen all of them already
        vectors = self.store.item_vectors(live.item_vectors_uri)
        if vectors is None:
            return None
        scores = vectors.scores(e.item_id for e in events)
        if scores is None:
            return None  # none of the consumed items has a vector
        listed = set(precomputed.item_ids) if precomputed is not None else set()
        fold_in_best = vectors.best(scores, k, exclude=seen | listed)
        return blend(
            precomputed,
            fold_in_best,
            lambda item_id: vectors.score_of(scores, item_id),
            seen,
            k,
            self.settings.realtime_weight,
        )

    def _before_any_model(self, user_id: str, k: int) -> dict[str, Any]:
        item_ids = self.store.catalog_sample(k)
        if not item_ids:
            raise UnavailableError(
                "no model has been published yet and the catalog is empty: upload a catalog, or publish a "
                "model with `recsys publish`",
                retry_after_s=NO_MODEL_RETRY_S,
            )
        pairs = [(i, 0.0) for i in item_ids]
        return {"user_id": user_id, "model_version": None, "source": CATALOG, "items": self._items(pairs)}

    def similar(self, item_id: str, k: int) -> dict[str, Any]:
        live = self.store.live()
        if live is None:
            raise UnavailableError(
                "no model has been published yet: similar items come with the first `recsys publish`",
                retry_after_s=NO_MODEL_RETRY_S,
            )
        similar = self.store.similar_list(live.version, item_id)
        if similar is None:
            raise NotFoundError(
                f"item {item_id!r} has no similar items in model version {live.version}", field="item_id"
            )
        pairs = best(similar, k, {item_id})
        return {"item_id": item_id, "model_version": live.version, "items": self._items(pairs)}

    def health(self) -> dict[str, Any]:
        live = self.store.live()
        return {
            "status": "ok",
            "model_version": live.version if live else None,
            "published_at": live.published_at if live else None,
        }

    def _items(self, pairs: list[Scored]) -> list[dict[str, Any]]:
        info = self.store.item_info([i for i, _ in pairs])
        return [
            {
                "item_id": item_id,
                "title": info[item_id].title,
                "categories": list(info[item_id].categories),
                "score": rounded(score),
            }
            for item_id, score in pairs
        ]
