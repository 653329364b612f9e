"""BuildKit sessions: the gRPC services our client serves to the daemon during a build.

* :class:`Session` — run one (``Session.open(engine, ...)`` picks the route;
  ``Session.start`` over ``Control.Session``, ``Session.start_docker`` /
  ``start_upgraded`` over dockerd's ``/session``);
* :class:`FileSyncProvider` + :class:`SyncedDir` — ``local://<name>`` sources
  sent with fsutil's DiffCopy protocol (:class:`DiffCopySender`);
  :func:`synced_dir_for_manifest` serves the plan's ``FileManifest``;
* :class:`FileSendProvider` + :class:`TarballOutput` / :class:`DirectoryOutput`
  — exporter output received back (:class:`DiffCopyReceiver` for ``local``);
* :class:`SecretsProvider` — secret mounts such as the CA bundle;
* :class:`AuthProvider` — registry credentials for pulls and pushes.
"""

from builder.engines.buildkit.session.auth import AuthProvider, CredentialLookup
from builder.engines.buildkit.session.errors import SessionError, TransferError, UnsafePathError
from builder.engines.buildkit.session.filesend import DirectoryOutput, FileSendProvider, TarballOutput
from builder.engines.buildkit.session.filesync import FileSyncProvider, SyncedDir
from builder.engines.buildkit.session.manifest import FileEntry, ManifestEntry, PatternSelector, walk_directory
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.engines.buildkit.session.receiver import DiffCopyReceiver, ReceiveReport
from builder.engines.buildkit.session.secrets import CA_BUNDLE_SECRET_ID, SecretsProvider
from builder.engines.buildkit.session.sender import DiffCopySender, TransferReport
from builder.engines.buildkit.session.server import Implementation, Session

__all__ = [
    "AuthProvider",
    "CredentialLookup",
    "CA_BUNDLE_SECRET_ID",
    "DiffCopyReceiver",
    "DiffCopySender",
    "DirectoryOutput",
    "FileEntry",
    "FileSendProvider",
    "FileSyncProvider",
    "Implementation",
    "ManifestEntry",
    "PatternSelector",
    "ReceiveReport",
    "SecretsProvider",
    "Session",
    "SessionError",
    "SyncedDir",
    "TarballOutput",
    "TransferError",
    "TransferReport",
    "UnsafePathError",
    "synced_dir_for_manifest",
    "walk_directory",
]
