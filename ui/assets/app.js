// A citation marker in an answer ([1] → #rag-src-1) scrolls to its source card and flashes it, instead of
// following the link (Gradio opens chat links in a new tab).
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#rag-src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  card.scrollIntoView({ behavior: "smooth", block: "nearest" });
  card.classList.add("rag-flash");
  setTimeout(() => card.classList.remove("rag-flash"), 1500);
}, true);
