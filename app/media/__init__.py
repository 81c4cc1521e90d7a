"""Images with posts: checked and cleaned uploads, object storage behind a CDN, a per-user library.

Bytes are not rows (ARCHITECTURE decision 13): the files live in object storage
(:mod:`app.media.storage`: S3-compatible through boto3, or a local directory), the database
holds their keys, alt text, tags and each platform's upload id with its expiry
(:class:`app.models.MediaItem`, :class:`app.models.MediaUpload`).

* :mod:`app.media.images`: what an upload must be (sniffed from its bytes), metadata stripped,
  thumbnails, and fitting an image to a platform's limits (pure: Pillow, no I/O).
* :mod:`app.media.storage`: where the bytes go, and the public (CDN) URL of each.
* :mod:`app.media.library`: adding, listing and deleting a user's images, scoped to their owner.
"""
