"""VADER without its quadratic steps: the same scores as vaderSentiment 3.3.2, several times faster on answers.

`SentimentIntensityAnalyzer` lowercases every word of the text again for each sentiment word it checks
(`_negation_check`, `_special_idioms_check`), and copies the text one character at a time to replace emojis:
on a 300-word answer that is most of its time. These overrides hand the checks the few words around the
one checked (they only ever look 3 words back and 2 ahead) and skip the emoji copy when the text has no
emoji; every score is unchanged, which `test_dimensions.py` checks against the library on real answers and
on generated text.
"""

from __future__ import annotations

from typing import Any

from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText

# The checks read words i-3 .. i+2 around word i, and are only called for i >= 1 (negation) or i >= 3
# (idioms), so a window from i-3 keeps every index they use, and every length test they make.
_BEFORE, _AFTER = 3, 3


class FastSentimentIntensityAnalyzer(SentimentIntensityAnalyzer):
    """`SentimentIntensityAnalyzer` with linear-time negation and idiom checks and an emoji fast path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The parent replaces a character only when it is an emoji key, so single characters suffice.
        self._emoji_chars = frozenset(key for key in self.emojis if len(key) == 1)

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not self._emoji_chars.isdisjoint(text):
            return super().polarity_scores(text)
        # The parent's body after its emoji pass, which leaves an emoji-free text as it is.
        text = text.strip()
        sentitext = SentiText(text)
        sentiments: list[float] = []
        words = sentitext.words_and_emoticons
        lexicon = self.lexicon
        for i, item in enumerate(words):
            lowered = item.lower()
            # `sentiment_valence` gives 0 to a word outside the lexicon: most words, so decided here.
            if (
                lowered not in lexicon
                or lowered in BOOSTER_DICT
                or (i < len(words) - 1 and lowered == "kind" and words[i + 1].lower() == "of")
            ):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
        sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)

    @staticmethod
    def _negation_check(valence: float, words_and_emoticons: list[str], start_i: int, i: int) -> float:
        low = max(0, i - _BEFORE)
        window = words_and_emoticons[low : i + _AFTER]
        return SentimentIntensityAnalyzer._negation_check(valence, window, start_i, i - low)

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        low = max(0, i - _BEFORE)
        window = words_and_emoticons[low : i + _AFTER]
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, i - low)
