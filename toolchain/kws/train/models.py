"""Keras 3 model architectures for keyword spotting (imports TensorFlow: training commands only).

- `ds_cnn`: MLPerf Tiny's closed-division KWS DS-CNN: a 10x4 stride-2 convolution, four depthwise-
  separable blocks, average pooling and a dense classifier, batch norm after every convolution
  (folded away by the int8 converter). 64 filters: 22,604 parameters after folding, 49x10x1 in,
  12 classes out, as the reference model.
- `tc`: temporal convolutions over [frames, 1, bins] (the mel bins are channels, as TC-ResNet,
  Choi et al. 2019): a stride-2 3-tap convolution, then depthwise-separable blocks along time. A 1 s
  window costs ~0.1-0.2 M MACs, sized for an always-on Cortex-M4 budget.
"""

from __future__ import annotations


def ds_cnn(*, input_shape: tuple[int, int, int] = (49, 10, 1), num_classes: int = 12, filters: int = 64,
           blocks: int = 4, first_kernel: tuple[int, int] = (10, 4), dropout: float = 0.2, bn_momentum: float = 0.99,
           seed: int = 0):
    """A DS-CNN as a keras.Model: float32 [batch, frames, coeffs, 1] -> softmax [batch, num_classes]."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Conv2D(filters, first_kernel, strides=(2, 2), padding="same", name="conv0")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    x = layers.Dropout(dropout, name="conv0_drop")(x)
    for i in range(blocks):
        x = layers.DepthwiseConv2D((3, 3), padding="same", name=f"dw{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(filters, (1, 1), padding="same", name=f"pw{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.Dropout(2 * dropout, name="final_drop")(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"ds_cnn_{filters}x{blocks}")


def tc(*, input_shape: tuple[int, int, int] = (49, 1, 40), num_classes: int = 3, filters: int = 32,
       blocks: int = 3, kernel: int = 5, dropout: float = 0.2, bn_momentum: float = 0.99, seed: int = 0):
    """Temporal-convolution model: float32 [batch, frames, 1, bins] -> softmax [batch, num_classes]."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(shape=input_shape, name="features")
    x = layers.Conv2D(filters, (3, 1), strides=(2, 1), padding="same", name="conv0")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    for i in range(blocks):
        x = layers.DepthwiseConv2D((kernel, 1), padding="same", name=f"dw{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"dw{i}_bn")(x)
        x = layers.ReLU(name=f"dw{i}_relu")(x)
        x = layers.Conv2D(filters, (1, 1), name=f"pw{i}")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"pw{i}_bn")(x)
        x = layers.ReLU(name=f"pw{i}_relu")(x)
    x = layers.Dropout(dropout, name="final_drop")(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=f"tc_{filters}x{blocks}")


def build(model_cfg, *, input_shape: tuple[int, int, int], num_classes: int, seed: int):
    """The keras.Model a [model] config section describes."""
    if model_cfg.arch == "tc":
        return tc(input_shape=input_shape, num_classes=num_classes, filters=model_cfg.filters, blocks=model_cfg.blocks,
                  kernel=model_cfg.kernel, dropout=model_cfg.dropout, seed=seed)
    return ds_cnn(input_shape=input_shape, num_classes=num_classes, filters=model_cfg.filters, blocks=model_cfg.blocks,
                  dropout=model_cfg.dropout, seed=seed)


def deployed_parameters(model) -> int:
    """Weights and biases of the convolution and dense layers: the parameter count once batch norm
    is folded into them (what the int8 model stores)."""
    total = 0
    for layer in model.layers:
        if layer.__class__.__name__ in ("Conv2D", "DepthwiseConv2D", "Dense"):
            total += sum(int(w.numpy().size) for w in layer.weights)
    return total


def macs(model) -> int:
    """Multiply-accumulates of one inference (convolutions and dense layers)."""
    total = 0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            out = layer.output.shape
            kernel = layer.weights[0].shape
            positions = int(out[1] * out[2]) if len(out) == 4 else 1
            if kind == "Conv2D":
                total += positions * int(kernel[0] * kernel[1] * kernel[2] * kernel[3])
            elif kind == "DepthwiseConv2D":
                total += positions * int(kernel[0] * kernel[1] * kernel[2] * kernel[3])
            else:
                total += int(kernel[0] * kernel[1])
    return total
