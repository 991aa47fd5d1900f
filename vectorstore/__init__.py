"""Documents: embeddings, the Chroma store, ingestion with FGA tuples, the FGA-filtered retriever.

FGA users are `user:<email>` (lower-cased); documents are `doc:<id>` (see `principals`).
"""

from vectorstore.embeddings import WarrantEmbeddingFunction, WarrantEmbeddings
from vectorstore.ingest import IngestError, Ingestor, IngestOutcome, Sharing
from vectorstore.retriever import FGARetriever, RetrievalOutcome
from vectorstore.store import DocumentStore, Hit, StoreError

__all__ = [
    "DocumentStore",
    "FGARetriever",
    "Hit",
    "IngestError",
    "IngestOutcome",
    "Ingestor",
    "RetrievalOutcome",
    "Sharing",
    "StoreError",
    "WarrantEmbeddingFunction",
    "WarrantEmbeddings",
]
