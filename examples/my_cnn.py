"""An example of your own CNN for xaikit: edit it, then train and rebuild (README, "Design your own CNN").

    invoke build-report --quick --set model.architecture=examples.my_cnn:build

The builder's contract (checked before anything is trained; a failure is one line, exit status 2):
- signature ``build(image_size, channels, *, seed, dropout) -> keras.Model``; ``seed`` must make the
  initial weights reproducible (Q5 trains several seeds of this design), ``dropout`` is the training
  recipe's rate (0 for the random-label and control models of Q5);
- input: ``image_size x image_size x channels`` images scaled to [0, 1] (grayscale: channels = 1);
- output: two classes (NORMAL, PNEUMONIA) as a 2-unit softmax, or a 1-unit sigmoid (P(PNEUMONIA), then
  explained as its logit), as the model's last layer;
- Grad-CAM reads the last layer with a 4-D output (``attribution.gradcam_layer = "auto"``): keep a
  convolutional layer, or Grad-CAM is skipped (IG still runs);
- only Keras' own layers, or layers registered with ``@keras.saving.register_keras_serializable``
  (models are saved and reloaded in Keras safe mode: no ``Lambda`` layers).

This file's text is part of every model's cache key: editing it retrains the models at the next
build; editing an answer template does not.
"""

import keras
from keras import layers

from xaikit.model import PerImageStandardization


def build(image_size: int, channels: int, *, seed: int, dropout: float) -> keras.Model:
    """Three 3x3 convolutions with ELU (the first strided), max-pooling between them, and a one-unit
    sigmoid head."""
    def init(i: int):
        return keras.initializers.GlorotUniform(seed=seed * 100 + i)

    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = PerImageStandardization(name="standardize")(inputs)     # per-image standardisation, as the built-ins
    for i, width in enumerate((24, 48, 96)):
        x = layers.Conv2D(width, 3, strides=2 if i == 0 else 1, padding="same", activation="elu",
                          kernel_initializer=init(i), name=f"my_conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"my_pool{i + 1}")(x) if i < 2 else x
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    prob = layers.Dense(1, activation="sigmoid", kernel_initializer=init(9), name="pneumonia")(x)
    return keras.Model(inputs, prob, name="my_cnn")
