"""GSM8K-style math word problems with calculation thoughts (DoT's GSM8K-Aug task).

Text format (the Implicit-CoT GSM8K-Aug files that Diffusion of Thoughts trains on, one
example per line ``question||rationale #### answer``)::

    prompt  "Maria has 3 boxes of apples with 12 apples in each box. She gives 7 apples to
             Omar. How many apples does Maria have now?"   (one line)
    target  "<<3*12=36>> <<36-7=29>> #### 29"

Each thought is one ``<<expression=value>>`` calculation; thoughts are joined by single
spaces, then " #### " and the answer. With ``cot=False`` (the answer-only baseline) the target
is just "#### 29". `thoughts` splits a target into ["<<3*12=36>>", "<<36-7=29>>", "#### 29"]
(a space between ">>" and "<<" separates two thoughts) and `join_thoughts` inverts it exactly;
joining the first k thoughts gives the start of the target.

Two sources of examples:

* `load_gsm_file(path)` reads GSM8K-Aug lines (``data/gsm8k/{train,valid,test}.txt`` of
  Implicit-CoT). A line must have a non-empty question before "||", one "####" followed by a
  non-empty answer, and nothing but ``<<...>>`` thoughts (separated by whitespace) between
  them; otherwise a ValueError names the file and the line. Whitespace between thoughts is
  normalised to one space. `GsmTask(path=..., test_path=...)` serves these files.
* Without a path, a seeded generator writes templated word problems: a person starts with some
  items (given as a count, or as containers times items per container: one thought), then
  gains, loses, multiplies or gives away a percentage of them (one thought each, two for the
  percentage: the part, then the rest), and the question asks for the count, the share of each
  of m friends (exact division) or the money from selling them all. All arithmetic is on
  integers; running counts stay below 10,000. The number of thoughts is uniform over
  [``min_steps``, ``max_steps``] (2..4 by default).

Verification: `answer_of` is the text after the last "####", stripped; `verify` accepts an
answer numerically equal to the gold answer once commas are removed ("1,000" == "1000.0").
``bucket`` is the number of thoughts of the gold rationale (``meta["steps"]``), e.g. "3".

Tokenizer: character level over printable ASCII (space to "~") plus the typographic characters
GSM8K text uses (’ ‘ “ ” – — … € £ ½ ¼ ¾ × ÷ °). Any other character of real GSM8K-Aug text
(accented letters, other symbols) maps to [UNK] and vanishes when decoding.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` only (GSM8K's accuracy is
this numeric match of the final answer).

Modules: ``format`` (thoughts, answers, GSM8K-Aug files), ``generator`` (templated word
problems) and ``task`` (``GsmTask``).
"""

from .format import ALPHABET, answer_of, join_thoughts, load_gsm_file, parse_gsm_line, thoughts
from .generator import generate_word_problem
from .task import GsmTask

__all__ = [
    "ALPHABET",
    "GsmTask",
    "answer_of",
    "generate_word_problem",
    "join_thoughts",
    "load_gsm_file",
    "parse_gsm_line",
    "thoughts",
]
