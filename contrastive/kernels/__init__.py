"""The loss kernels, a module per family; `contrastive.losses` names every public one.

`infonce`: the InfoNCE family on similarities (the contrastive loss, DCL, the hard
and simple losses, the relative penalty); `views`: the losses of a batch's two views
(NT-Xent, the hard loss, DCL), dense or tiled; `macl`: Model-Aware Contrastive
Learning; `generalized`: Chen, Luo & Li's generalized loss. Pure functions of JAX
arrays; they import nothing of the package but `blockwise`, `numerics`, `pairs`.
"""
