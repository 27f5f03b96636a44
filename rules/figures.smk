# Figures of the paper, each with a caption in the report.


rule plot_intensity_distributions:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        datasets=report(
            f"{RESULTS}/figures/fig2_intensity_distributions.png",
            caption="report/fig2_intensity_distributions.rst",
            category="1. Data",
            labels={"figure": "Fig. 2 per-class intensities"},
        ),
        sites=report(
            f"{RESULTS}/figures/fig2b_site_distributions.png",
            caption="report/fig2b_site_distributions.rst",
            category="1. Data",
            labels={"figure": "Fig. 2b per-site intensities"},
        ),
        histograms=f"{RESULTS}/tables/fig2_histograms.csv",
    params:
        bins=config["figures"]["histogram_bins"],
    log:
        f"{RESULTS}/logs/plot_intensity_distributions.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_intensity_distributions.py"
