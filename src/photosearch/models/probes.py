"""Fixed inputs a derived graph must reproduce the original model on before it is used.

The strings cover every length class (empty, one word, typical queries, captions, and text longer
than the 77-token context, which the tokenizer truncates), non-Latin scripts, emoji, HTML entities
(the tokenizer unescapes them), and the special-token strings open_clip recognises in text.
"""

from __future__ import annotations

import numpy as np

PROBE_TEXTS: tuple[str, ...] = (
    "",
    "dog",
    "a dog",
    "cat",
    "sunset",
    "red mushroom in moss",
    "a photo of a cat",
    "two people walking on a beach at sunset",
    "my daughter's birthday party with balloons and cake",
    "snow covered mountains reflected in a calm lake",
    "a black and white photo of an old steam train crossing a bridge",
    "close-up of a bee on a yellow flower",
    "receipt from the hardware store",
    "screenshot of a text message",
    "street sign that says STOP",
    "Eiffel Tower at night",
    "New York City skyline from the Brooklyn Bridge",
    "birthday cake with 7 candles",
    "2019 summer vacation, Lake Tahoe",
    "IMG_2041.JPG",
    "the quick brown fox jumps over the lazy dog",
    "A man in a RED jacket Riding a Bicycle",
    "   leading and trailing spaces   ",
    "tabs\tand\nnew lines\r\nmixed",
    "punctuation!!! ??? ... ;;; --- ***",
    "it's a dog's life, isn't it? we'll see, they'd say, you're right, I've been, I'm here",
    "café crème brûlée à la française",
    "naïve façade Zürich Ørsted Łódź",
    "東京タワーの夜景",
    "北京的长城",
    "서울의 벚꽃",
    "Москва зимой",
    "غروب الشمس على البحر",
    "שקיעה בים",
    "पहाड़ों में सूर्योदय",
    "Αθήνα Ακρόπολη",
    "🐶 dog with 🎾 ball",
    "🌅🏖️🌊",
    "👨‍👩‍👧‍👦 family picnic",
    "Tom &amp; Jerry",
    "&lt;b&gt;bold&lt;/b&gt; text",
    "&quot;quoted&quot; &#39;single&#39; &#x27;hex&#x27;",
    "&amp;amp; double escaped",
    "fish &amp; chips &ndash; London &mdash; 2020",
    "<end_of_text>",
    "a <start_of_text> in the middle <end_of_text> and after",
    "mojibake: Ã©tÃ© â€” SchÃ¶n",
    "numbers 1234567890 and 3.14159 and -42",
    "C++ / C# / F# & .NET",
    "email@example.com https://example.com/path?q=1",
    "ALL CAPS SHOUTING ABOUT A PARADE",
    "a photo of " + "a red mushroom in green moss " * 14,
    " ".join(f"word{i}" for i in range(120)),
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex "
    "ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore.",
    "🙂" * 90,
    "长" * 100,
    "a" * 300,
    "sixteen words: a golden retriever puppy chasing a red ball across the green park lawn today",
    "x",
    "1",
)

assert len(PROBE_TEXTS) >= 50


def probe_images(size: int, n: int = 6, seed: int = 0) -> np.ndarray:
    """n normalised-looking float32 [n, 3, size, size] inputs: gradients, noise and flat fields."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    out = [np.stack([x, y, (x + y) / 2]) * 4 - 2, np.zeros((3, size, size)), np.full((3, size, size), 1.5)]
    while len(out) < n:
        out.append(rng.standard_normal((3, size, size)))
    return np.stack(out[:n]).astype(np.float32)
