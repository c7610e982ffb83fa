"""Import an externally trained victim encoder. Snakemake rule: import_victim."""

from sslsteal.backbones import import_encoder, save_encoder
from sslsteal.io import config_hash, file_sha256
from sslsteal.runtime import logged_to

with logged_to(snakemake.log[0]) as log:
    victim = snakemake.params.victim
    external = victim["external"]
    encoder = import_encoder(
        snakemake.input.checkpoint, external["format"], victim["backbone"], external["in_channels"], external["image_size"]
    )
    save_encoder(
        snakemake.output.encoder,
        encoder,
        victim["backbone"],
        external["in_channels"],
        external["image_size"],
        victim=snakemake.wildcards.victim,
        method=victim["method"],
        config=victim,
        config_hash=config_hash(victim),
        source_sha256=file_sha256(snakemake.input.checkpoint),
    )
    log.info("imported %s (%s): %d-d representation", snakemake.input.checkpoint, external["format"], encoder.representation_dim)
