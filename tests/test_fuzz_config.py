"""Property: any YAML document and any override strings give a TrainConfig or a TRMError.

Nothing a user can write in a config file or on the command line may end in another
exception (a traceback instead of a one-line message).
"""

import contextlib
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trm.config import ModelConfig
from trm.errors import TRMError
from trm.train.config import DataConfig, LogConfig, TrainConfig, load_train_config

FIELDS = sorted({*TrainConfig.model_fields, *DataConfig.model_fields, *LogConfig.model_fields,
                 *ModelConfig.model_fields, "base"})
SECTIONS = {"model": sorted(ModelConfig.model_fields), "data": sorted(DataConfig.model_fields),
            "log": sorted(LogConfig.model_fields)}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(0, 20),
    st.floats(0, 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["a.yaml", "../a.yaml", "self.yaml", "", "/", ".", "..", "nan", "auto", "mlp", "none"]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=8), st.integers(-3, 3))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def documents(draw):
    """A mapping of real and random keys, sections with their real keys, or any other YAML value."""
    doc = draw(st.dictionaries(keys, values, max_size=6))
    for section, names in SECTIONS.items():
        if draw(st.booleans()):
            doc[section] = draw(st.dictionaries(st.sampled_from(names), values, max_size=4))
    return draw(values) if draw(st.integers(0, 4)) == 0 else doc


dotted = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from([f"{s}.{k}" for s, names in SECTIONS.items() for k in names]),
    st.text(alphabet="abmodel._= ", max_size=10),
)
raw_values = st.one_of(st.text(max_size=10), scalars.map(lambda v: yaml.safe_dump(v).removesuffix("\n...\n")))
key_values = st.builds(lambda k, v: f"{k}={v}", dotted, raw_values)
overrides = st.lists(st.one_of(key_values, key_values, key_values, st.text(max_size=10)), max_size=4)


def load(text: str | bytes, base_text: str | None, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "self.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        if base_text is not None:
            (Path(tmp) / "a.yaml").write_text(base_text)
        with contextlib.suppress(TRMError):
            assert isinstance(load_train_config(path, extra), TrainConfig)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), base_doc=st.none() | documents(), extra=overrides)
def test_random_yaml_and_overrides_load_or_raise_a_trm_error(doc, base_doc, extra):
    base_text = None if base_doc is None else yaml.safe_dump(base_doc)
    load(yaml.safe_dump(doc), base_text, extra)


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(st.text(max_size=40), st.binary(max_size=40)), extra=overrides)
def test_random_text_loads_or_raises_a_trm_error(text, extra):
    load(text, None, extra)
