// Loaded between require.js and @jupyter-widgets/html-manager's embed-amd.js (see
// _ext/offline_assets.py), on every page with widgets.
(function () {
  // 1. embed-amd.js loads its fonts from "@jupyter-widgets/html-manager/dist/", resolved by
  //    require.js against the page's folder. Point that module path at this folder instead,
  //    where scripts/fetch_web_assets.py put the fonts next to embed-amd.js.
  var here = document.currentScript.src.replace(/[^/]*$/, "").replace(/\/$/, "");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": here } });

  // 2. The widget manager typesets labels with the MathJax 2 API (MathJax.Hub.Queue); the
  //    site runs MathJax 3. Bridge the one call it makes.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function () {
          if (mj.typesetPromise) { mj.typesetPromise(); }
        },
      };
    }
  });
})();
