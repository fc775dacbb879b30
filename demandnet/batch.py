"""Names of the keys of a batch dict, shared by the Dataset and the model branches.

A batch is a dict of tensors with a leading batch dimension B:
    image        (B, 3, H, W) float32, normalised; zeros where has_image == 0
    image_features (B, F) float32, a frozen backbone's cached features, in place of `image` (frozen_features.py)
    has_image    (B,) float32, 1.0 when a usable photo was decoded
    categorical  (B, C) int64, 0 is the unknown bucket of every column
    numeric      (B, F) float32, standardised on the train split
    <field>_ids  (B, L) int64 token ids per text field, 0 is padding (navec: title_ids, description_ids)
    text_ids / text_mask  (B, L) transformer input ids and attention mask (title and description as a pair)
    target       (B,) float32, only when the data has deal_probability
    index        (B,) int64, row position in the source CSV (keeps predictions in input order)
    photo_on_disk (B,) bool, the row names a photo file that exists (with has_image: counts unusable photos)
"""

IMAGE = "image"
IMAGE_FEATURES = "image_features"
HAS_IMAGE = "has_image"
CATEGORICAL = "categorical"
NUMERIC = "numeric"
TARGET = "target"
INDEX = "index"
PHOTO_ON_DISK = "photo_on_disk"
TEXT_IDS = "text_ids"
TEXT_MASK = "text_mask"


def field_ids(field: str) -> str:
    """Key of one text field's token ids, e.g. `title_ids`."""
    return f"{field}_ids"
